#include "redis_sentinel.hpp"

namespace backstop {

Result<RedisAddress, Failure> ask_sentinels(const std::vector<RedisAddress>& sentinels,
                                            const std::string& master_name,
                                            const RedisLogin& login) {
    std::string whys;
    for (const auto& s : sentinels) {
        RedisAddress master;
        auto why = [&]() -> std::string {
            auto c = RedisConnection::open(s, login, 0);
            if (!c) return c.error().message;
            auto r = (*c)->command({"SENTINEL", "get-master-addr-by-name", master_name});
            if (!r) return r.error().message;
            const redisReply* a = r->get();
            if (a->type == REDIS_REPLY_NIL)
                return s.text() + ": knows no master named " + master_name;
            if (a->type != REDIS_REPLY_ARRAY || a->elements != 2 ||
                a->element[0]->type != REDIS_REPLY_STRING ||
                a->element[1]->type != REDIS_REPLY_STRING)
                return s.text() + ": " + redis_error_text(a);
            master.host.assign(a->element[0]->str, a->element[0]->len);
            std::string port(a->element[1]->str, a->element[1]->len);
            if (port.empty() || port.size() > 5 ||
                port.find_first_not_of("0123456789") != std::string::npos)
                return s.text() + ": bad port '" + port + "'";
            master.port = std::stoi(port);
            return {};
        }();
        if (why.empty()) return master;
        whys += (whys.empty() ? "" : "; ") + why;
    }
    return Failure{"no Sentinel named the master " + master_name + ": " + whys};
}

std::string check_master_role(RedisConnection& c) {
    auto r = c.command({"ROLE"});
    if (!r) return r.error().message;
    const redisReply* a = r->get();
    if (a->type != REDIS_REPLY_ARRAY || a->elements < 1 ||
        a->element[0]->type != REDIS_REPLY_STRING)
        return "ROLE: " + redis_error_text(a);
    std::string role(a->element[0]->str, a->element[0]->len);
    return role == "master" ? std::string() : "not the master but a " + role;
}

}  // namespace backstop
