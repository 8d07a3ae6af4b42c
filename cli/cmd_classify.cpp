// backstop classify: one JSON object per input file (JSON Lines), in input order.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/watermark.hpp"
#include "backstop/envelope/keyring.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace backstop::cli {

namespace {

// A JSON string. Bytes that are not valid UTF-8 become U+FFFD so the output is
// valid JSON (one pass, no copy of the text).
void json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        // Printable ASCII other than '"' and '\\' is copied in runs.
        static constexpr auto kPlain = [] {
            std::array<bool, 256> t{};
            for (int c = 0x20; c < 0x7f; ++c) t[c] = c != '"' && c != '\\';
            return t;
        }();
        std::size_t run = i;
        while (run < s.size() && kPlain[static_cast<unsigned char>(s[run])]) ++run;
        out.append(s.substr(i, run - i));
        i = run;
        if (i >= s.size()) break;
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
            bool ok = n > 0 && i + n <= s.size();
            for (std::size_t k = 1; ok && k < n; ++k)
                ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
            if (ok) {
                out.append(s.substr(i, n));
                i += n;
            } else {
                out += "\xEF\xBF\xBD";
                ++i;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    out.push_back('"');
}

// A string field, or nothing when empty (unknown fields are omitted).
void field(std::string& out, bool& first, std::string_view name, std::string_view value) {
    if (value.empty()) return;
    if (!first) out.push_back(',');
    first = false;
    json_string(out, name);
    out.push_back(':');
    json_string(out, value);
}

// Appends the JSON object for one file to 'out'.
void to_json(std::string& out, std::string_view file, const Classification& c, bool checked) {
    out += "{";
    bool first = true;
    field(out, first, "file", file);
    field(out, first, "kind", to_string(c.kind));
    field(out, first, "mta", c.mta);
    out += ",\"recipients\":[";
    for (std::size_t i = 0; i < c.recipients.size(); ++i) {
        const auto& r = c.recipients[i];
        if (i) out.push_back(',');
        out.push_back('{');
        bool f = true;
        field(out, f, "address", r.address);
        field(out, f, "status", r.status);
        field(out, f, "reply_code", r.reply_code);
        field(out, f, "action", r.action);
        field(out, f, "reason", r.reason);
        out += r.hard ? ",\"hard\":true" : ",\"hard\":false";
        field(out, f, "diagnostic", r.diagnostic);
        out.push_back('}');
    }
    out.push_back(']');
    if (!c.about.empty()) {
        out += ",\"about\":[";
        for (std::size_t i = 0; i < c.about.size(); ++i) {
            if (i) out.push_back(',');
            json_string(out, c.about[i]);
        }
        out.push_back(']');
    }
    if (c.original.present) {
        const auto& o = c.original;
        out += ",\"original\":{";
        bool f = true;
        field(out, f, "message_id", o.message_id);
        field(out, f, "from", o.from);
        field(out, f, "date", o.date);
        field(out, f, "envelope_sender", o.envelope_sender);
        if (!o.received.empty()) {
            if (!f) out.push_back(',');
            f = false;
            out += "\"received\":[";
            for (std::size_t i = 0; i < o.received.size(); ++i) {
                if (i) out.push_back(',');
                json_string(out, o.received[i]);
            }
            out.push_back(']');
        }
        bool found = !o.watermark_found.value.empty() || !o.watermark_found.mailscanner.empty();
        // Without keys a mark cannot be judged: say so instead of guessing.
        std::string_view wm = checked ? to_string(o.watermark) : (found ? "unchecked" : "absent");
        field(out, f, "watermark", wm);
        out.push_back('}');
    } else {
        out += ",\"original\":null";
    }
    if (!c.verp_recipient.empty()) {
        out += ",";
        bool f = true;
        field(out, f, "verp_recipient", c.verp_recipient);
    }
    if (c.truncated) out += ",\"truncated\":true";
    out.push_back('}');
}

// Reads whole files (or stdin for "-") into one buffer that only grows: over thousands
// of files, a fresh buffer per file (read a character at a time) cost more than
// classifying the message. The bytes go straight from read(2) into the buffer.
// System calls are most of what is left per file on a virtual machine, so files of
// one directory are opened relative to it (a one-name lookup instead of the whole
// path's) and closed in batches with close_range(2).
class FileBuffer {
  public:
    FileBuffer() = default;
    FileBuffer(const FileBuffer&) = delete;
    FileBuffer& operator=(const FileBuffer&) = delete;
    ~FileBuffer() {
        close_pending();
        if (dir_fd_ >= 0) ::close(dir_fd_);
    }

    // The file's bytes, valid until the next read; false (and 'error') when it fails.
    bool read(const std::string& path, std::string_view& out, std::string& error) {
        int fd = path == "-" ? STDIN_FILENO : open(path);
        if (fd < 0) {
            error = "cannot open file";
            return false;
        }
        std::size_t size = 0;
        bool ok = true;
        for (;;) {
            if (capacity_ - size < 4096) grow(size);
            ssize_t n = ::read(fd, buffer_.get() + size, capacity_ - size);
            if (n > 0) {
                size += static_cast<std::size_t>(n);
            } else if (n == 0) {
                break;
            } else if (errno != EINTR) {
                error = "read error";
                ok = false;
                break;
            }
        }
        if (fd != STDIN_FILENO) defer_close(fd);
        out = std::string_view(buffer_.get(), size);
        return ok;
    }

  private:
    // Out of descriptors with closes still pending: close them and try again.
    int open(const std::string& path) {
        int fd = open_once(path);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && !pending_.empty()) {
            close_pending();
            fd = open_once(path);
        }
        return fd;
    }

    int open_once(const std::string& path) {
        std::size_t slash = path.rfind('/');
        if (slash == std::string::npos || slash + 1 == path.size())
            return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        std::string_view dir(path.data(), slash == 0 ? 1 : slash);
        if (dir_fd_ < 0 || dir != dir_) {
            if (dir_fd_ >= 0) ::close(dir_fd_);
            dir_.assign(dir);
            dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dir_fd_ < 0) return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        }
        return ::openat(dir_fd_, path.c_str() + slash + 1, O_RDONLY | O_CLOEXEC);
    }

    // Descriptors come lowest-free first, so a batch is a run or two (around one
    // held by someone else), each closed with one call.
    void defer_close(int fd) {
        pending_.push_back(fd);
        if (pending_.size() == kBatch) close_pending();
    }

    void close_pending() {
        std::sort(pending_.begin(), pending_.end());
        for (std::size_t i = 0; i < pending_.size();) {
            std::size_t j = i + 1;
            while (j < pending_.size() && pending_[j] == pending_[j - 1] + 1) ++j;
            auto lo = static_cast<unsigned>(pending_[i]),
                 hi = static_cast<unsigned>(pending_[j - 1]);
            if (::close_range(lo, hi, 0) != 0)
                for (unsigned fd = lo; fd <= hi; ++fd) ::close(static_cast<int>(fd));
            i = j;
        }
        pending_.clear();
    }

    void grow(std::size_t keep) {
        std::size_t capacity = std::max<std::size_t>(64 * 1024, capacity_ * 2);
        auto bigger = std::make_unique<char[]>(capacity);
        if (keep > 0) std::memcpy(bigger.get(), buffer_.get(), keep);
        buffer_ = std::move(bigger);
        capacity_ = capacity;
    }

    static constexpr std::size_t kBatch = 64;
    std::unique_ptr<char[]> buffer_;
    std::size_t capacity_ = 0;
    std::string dir_;
    int dir_fd_ = -1;
    std::vector<int> pending_;
};

}  // namespace

int cmd_classify(int argc, char** argv) {
    constexpr const char* kUsage = "backstop classify [options] FILE... (- for stdin)";
    po::options_description desc("classify options");
    desc.add_options()("max-bytes", po::value<std::size_t>()->default_value(512 * 1024),
                       "bytes examined per message")(
        "envelope-recipient", po::value<std::string>(),
        "the bounce's envelope recipient (VERP decoding)")(
        "watermark-keys", po::value<std::string>(), "key file: one secret per line")(
        "watermark-header", po::value<std::string>(), "watermark header name")(
        "mailscanner-secret", po::value<std::string>(), "MailScanner watermark secret")(
        "repeat", po::value<int>()->default_value(1), "classify each file N times (benchmarks)");
    add_time_option(desc);
    po::variables_map vm;
    std::vector<std::string> files;
    if (auto stop = parse_options(argc, argv, desc, kUsage, vm, files)) return *stop;
    if (files.empty()) {
        std::cerr << argv[0] << ": no input files\nusage: " << kUsage << "\n";
        return kExitUsage;
    }
    ClassifyOptions options;
    options.max_bytes = vm["max-bytes"].as<std::size_t>();
    if (vm.count("envelope-recipient"))
        options.envelope_recipient = vm["envelope-recipient"].as<std::string>();
    options.now = now_from(vm);
    std::optional<Watermark> watermark;
    WatermarkConfig wconfig;
    if (vm.count("watermark-header"))
        wconfig.header_name = vm["watermark-header"].as<std::string>();
    if (vm.count("mailscanner-secret"))
        wconfig.mailscanner_secret = vm["mailscanner-secret"].as<std::string>();
    if (vm.count("watermark-keys")) {
        auto keys = load_secret_list(vm["watermark-keys"].as<std::string>());
        if (!keys) {
            std::cerr << argv[0] << ": " << keys.error().message << "\n";
            return kExitUsage;
        }
        watermark.emplace(keys.value(), wconfig);
    } else if (!wconfig.mailscanner_secret.empty()) {
        watermark.emplace(SecretList{}, wconfig);
    }
    if (watermark) options.watermark = &*watermark;
    int repeat = std::max(1, vm["repeat"].as<int>());

    BounceClassifier classifier;
    int status = kExitOk;
    // One input buffer and one output buffer for all files, flushed in large writes.
    FileBuffer input;
    std::string_view data;
    std::string out, error;
    for (const auto& path : files) {
        if (!input.read(path, data, error)) {
            out += "{";
            bool f = true;
            field(out, f, "file", path);
            field(out, f, "error", error);
            out += "}\n";
            status = kExitFailed;
        } else {
            Classification c;
            for (int i = 0; i < repeat; ++i) c = classifier.classify(data, options);
            to_json(out, path, c, options.watermark != nullptr);
            out.push_back('\n');
        }
        if (out.size() >= 64 * 1024) {
            std::cout.write(out.data(), static_cast<std::streamsize>(out.size()));
            out.clear();
        }
    }
    std::cout.write(out.data(), static_cast<std::streamsize>(out.size()));
    std::cout.flush();
    return status;
}

}  // namespace backstop::cli
