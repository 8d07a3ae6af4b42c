// How the stream-reading fuzz harnesses feed their reader: in up to four appends, cut
// where the control byte's high bits say, so that every framing state meets a cut.
#pragma once

#include <cstdint>
#include <string_view>

namespace backstop::testing {

// Calls take(piece) for each piece in order; stops early when take returns false
// (the server would close the connection there).
template <class Take>
void in_pieces(std::string_view stream, std::uint8_t control, Take take) {
    std::uint32_t cuts = (control >> 4) * 2654435761u + 1;
    for (int piece = 0; piece < 4 && !stream.empty(); ++piece) {
        std::size_t n = stream.size();
        if (piece < 3) {
            cuts = cuts * 1103515245u + 12345u;
            n = (cuts >> 8) % (stream.size() + 1);
        }
        if (!take(stream.substr(0, n))) return;
        stream.remove_prefix(n);
    }
}

}  // namespace backstop::testing
