#include "backstop/envelope/keyring.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backstop {

namespace {

KeyFileError err(KeyFileErrc code, std::string message) {
    return {code, std::move(message)};
}

// Calls fn(line, line_number) for each line that is not blank or a comment,
// with CR/LF and surrounding blanks removed.
template <class Fn>
void for_each_key_line(std::string_view text, Fn fn) {
    int number = 0;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++number;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.remove_suffix(1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        if (line.empty() || line.front() == '#') continue;
        if (!fn(line, number)) return;
    }
}

}  // namespace

const BatvKey* BatvKeys::find(int number) const {
    for (const auto& k : keys) {
        if (k.number == number) return &k;
    }
    return nullptr;
}

Result<SecretList, KeyFileError> parse_secret_list(std::string_view text, std::string_view origin) {
    SecretList out;
    for_each_key_line(text, [&](std::string_view line, int) {
        out.secrets.emplace_back(line);
        return true;
    });
    if (out.secrets.empty())
        return err(KeyFileErrc::empty, std::string(origin) + ": no secret in file");
    return out;
}

Result<BatvKeys, KeyFileError> parse_batv_keys(std::string_view text, std::string_view origin) {
    BatvKeys out;
    std::string problem;
    for_each_key_line(text, [&](std::string_view line, int number) {
        std::string where = std::string(origin) + ":" + std::to_string(number) + ": ";
        if (line.size() < 3 || line[0] < '0' || line[0] > '9' ||
            (line[1] != ' ' && line[1] != '\t')) {
            problem = where + "expected '<digit 0-9> <secret>'";
            return false;
        }
        std::string_view secret = line.substr(2);
        while (!secret.empty() && (secret.front() == ' ' || secret.front() == '\t'))
            secret.remove_prefix(1);
        if (secret.empty()) {
            problem = where + "key " + line[0] + " has no secret";
            return false;
        }
        if (out.find(line[0] - '0') != nullptr) {
            problem = where + "key number " + line[0] + " appears twice";
            return false;
        }
        out.keys.push_back({line[0] - '0', std::string(secret)});
        return true;
    });
    if (!problem.empty()) return err(KeyFileErrc::bad_line, problem);
    if (out.keys.empty()) return err(KeyFileErrc::empty, std::string(origin) + ": no key in file");
    return out;
}

Result<std::string, KeyFileError> read_key_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return err(e == ENOENT ? KeyFileErrc::missing : KeyFileErrc::unreadable,
                   path + ": cannot open: " + std::strerror(e));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return err(KeyFileErrc::unreadable, path + ": cannot stat: " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return err(KeyFileErrc::not_regular, path + ": not a regular file");
    }
    // A secret others can read is no secret: refuse, as ssh does with keys.
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        ::close(fd);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
        return err(KeyFileErrc::insecure,
                   path + ": mode " + mode + " lets group or others read it; chmod 600 or 400");
    }
    std::string data;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return err(KeyFileErrc::unreadable, path + ": read failed: " + std::strerror(e));
        }
        if (n == 0) break;
        data.append(buf, std::size_t(n));
        if (data.size() > (1u << 20)) {
            ::close(fd);
            return err(KeyFileErrc::unreadable, path + ": larger than 1 MiB, not a key file");
        }
    }
    ::close(fd);
    return data;
}

Result<SecretList, KeyFileError> load_secret_list(const std::string& path) {
    auto text = read_key_file(path);
    if (!text) return text.error();
    return parse_secret_list(*text, path);
}

Result<BatvKeys, KeyFileError> load_batv_keys(const std::string& path) {
    auto text = read_key_file(path);
    if (!text) return text.error();
    return parse_batv_keys(*text, path);
}

}  // namespace backstop
