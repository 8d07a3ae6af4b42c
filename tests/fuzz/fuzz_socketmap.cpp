// libFuzzer: the socketmap from the MTA's side. The input bytes, split into a few
// appends, go through a NetstringReader and every request through answer_request()
// with a real Policy (SRS and BATV on). Invariants: no crash; every reply is one
// netstring of OK, "NOTFOUND " or PERM (never TEMP: only an exception gives TEMP);
// a forward answer is at our SRS domain and the reverse map takes an SRS0 answer
// back to the key; a reverse answer comes only from a key at our SRS domain or one
// of our domains; nothing is read after a framing error.
//
// The first input byte steers the run: bit 0 picks the second policy (subaddress
// tags, url alphabet, longer hashes), bits 4-7 seed where the stream is cut.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "backstop/base/ascii.hpp"
#include "backstop/envelope/address.hpp"
#include "backstop/policy/address_maps.hpp"
#include "backstop/policy/policy.hpp"
#include "socketmap_protocol.hpp"
#include "stream_pieces.hpp"
#include "temp_dir.hpp"
#include "test_policy.hpp"

namespace {

using backstop::MapStatus;

const backstop::testing::PolicyPair& env() {
    static const auto e =
        backstop::testing::fuzz_policies("backstop-fuzz-socketmap", [](backstop::Config& c) {
            c.batv_subaddress = true;
            c.srs_alphabet = "url";
            c.srs_hash_length = 8;
            c.local_domains.push_back("second.example");
        });
    return e;
}

// One reply netstring from the front of out, checked and removed.
std::string_view take_reply(std::string_view& out) {
    const std::size_t colon = out.find(':');
    if (colon == 0 || colon == std::string_view::npos || colon > 6) std::abort();
    std::size_t len = 0;
    for (char c : out.substr(0, colon)) {
        if (c < '0' || c > '9') std::abort();
        len = len * 10 + std::size_t(c - '0');
    }
    if (out.size() < colon + 1 + len + 1 || out[colon + 1 + len] != ',') std::abort();
    std::string_view data = out.substr(colon + 1, len);
    out.remove_prefix(colon + 1 + len + 1);
    return data;
}

void check(const backstop::Policy& p, const backstop::milter::SocketmapExchange& x,
           std::string_view reply, backstop::UnixTime now) {
    const auto& a = x.answer;
    switch (a.status) {
        case MapStatus::ok:
            if (reply != "OK " + a.value || a.value.empty()) std::abort();
            break;
        case MapStatus::notfound:
            if (reply != "NOTFOUND ") std::abort();
            return;
        case MapStatus::perm:
            if (reply != "PERM " + a.value) std::abort();
            return;
        case MapStatus::temp:
            std::abort();  // an exception escaped a lookup
    }
    auto key = backstop::parse_address(x.request.key);
    if (!key || key->domain.empty()) std::abort();  // only a whole address maps
    if (x.request.name == "forward") {
        auto out = backstop::parse_address(a.value);
        if (!out || !p.is_srs_domain(out->domain) || out->local.size() > 66) std::abort();
        if (p.is_local_domain(key->domain) || p.is_srs_domain(key->domain)) std::abort();
        if (backstop::istarts_with(a.value, "SRS0")) {
            auto back = backstop::lookup(p, "reverse", a.value, now);
            if (back.status != MapStatus::ok || back.value != key->str()) std::abort();
        }
    } else if (x.request.name == "reverse") {
        if (!p.is_srs_domain(key->domain) && !p.is_local_domain(key->domain)) std::abort();
    } else {
        std::abort();  // only the two maps answer OK
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto& e = env();
    const backstop::UnixTime now = backstop::testing::kNow;
    const std::uint8_t control = data[0];
    const backstop::Policy& policy = control & 1 ? *e.varied : *e.base;
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

    backstop::milter::NetstringReader reader;
    backstop::testing::in_pieces(rest, control, [&](std::string_view piece) {
        reader.append(piece);
        while (auto request = reader.next()) {
            if (request->size() > backstop::milter::kSocketmapMaxRequest) std::abort();
            auto x = backstop::milter::answer_request(policy, *request, now);
            std::string out;
            backstop::milter::append_reply(out, x.answer);
            std::string_view view = out;
            const std::string_view reply = take_reply(view);
            if (!view.empty()) std::abort();  // one reply per request
            check(policy, x, reply, now);
        }
        if (reader.error() != backstop::milter::NetstringReader::Error::none) {
            // The server closes here: the stream yields nothing more.
            reader.append("5:hello,");
            if (reader.next()) std::abort();
            return false;
        }
        return true;
    });
    return 0;
}
