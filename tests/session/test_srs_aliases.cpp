// [srs] original-envelope through the Session and the socketmap's maps: senders
// too long to embed leave as the SRS0 of their postsrsd 2 alias, and bounces to it
// come back to them; a store that fails follows on-state-error.
#include <gtest/gtest.h>

#include "backstop/envelope/srs_alias.hpp"
#include "backstop/policy/address_maps.hpp"
#include "backstop/state/store.hpp"
#include "down_store.hpp"
#include "fake_mta.hpp"

using namespace backstop;
using namespace backstop::testing;

namespace {

const std::string kLong =
    "a.very.long.sender.address.with.many.parts.for.testing.only@subdomain.of.a.long."
    "example-domain.org";
constexpr const char* kAlias = "177RE26INPKI1O95KN4J23EVADPI3JDD@1";

class SrsAliasTest : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = [this] {
        Config c = base_config(dir);
        c.state = "sqlite:" + dir.file("state.db");  // original-envelope defaults to auto
        return c;
    }();
    FixedClock clock{kNow};
    std::shared_ptr<StateStore> store = *open_state(config.state);
    Metrics metrics;

    std::string srs(const std::string& a, UnixTime when = kNow) {
        return build(config)->srs()->forward(a, when)->address;
    }
    Outcome send(const Transaction& t, StateStore* state) {
        Session s(build(config), clock);
        s.set_state(state);
        s.set_metrics(&metrics);
        s.connect("client.example", t.client);
        return run(s, t);
    }
    Outcome forward(const std::string& sender, StateStore* state) {
        Transaction t;
        t.client = "192.0.2.10";
        t.sender = "<" + sender + ">";
        t.recipients = {"<dave@remote.example>"};
        return send(t, state);
    }
    Outcome bounce_to(const std::string& rcpt, StateStore* state) {
        Transaction t;
        t.sender = "<>";
        t.recipients = {"<" + rcpt + ">"};
        return send(t, state);
    }
};

}  // namespace

TEST(OriginalEnvelopeConfig, DefaultFollowsTheStateAndMemoryIsRefused) {
    auto cfg = [](const std::string& text) { return parse_config_text(text, "t.conf", {}); };
    EXPECT_EQ(original_envelope(*cfg("")), OriginalEnvelope::embedded);
    EXPECT_EQ(original_envelope(*cfg("state = sqlite:/x.db\n")), OriginalEnvelope::automatic);
    EXPECT_EQ(original_envelope(*cfg("state = redis://127.0.0.1:6379/0\n")),
              OriginalEnvelope::automatic);
    EXPECT_EQ(
        original_envelope(*cfg("state = sqlite:/x.db\n[srs]\noriginal-envelope = embedded\n")),
        OriginalEnvelope::embedded);
    EXPECT_EQ(
        original_envelope(*cfg("state = sqlite:/x.db\n[srs]\noriginal-envelope = database\n")),
        OriginalEnvelope::database);
    EXPECT_EQ(original_envelope(*cfg("[srs]\noriginal-envelope = embedded\n")),
              OriginalEnvelope::embedded);
    for (const char* mode : {"auto", "database"}) {
        auto bad = cfg(std::string("[srs]\noriginal-envelope = ") + mode + "\n");
        ASSERT_FALSE(bad.ok()) << mode;
        EXPECT_EQ(bad.error().message,
                  std::string("t.conf: [srs] original-envelope = ") + mode +
                      " keeps aliases in the state store: set state = sqlite:/path or "
                      "redis://host, or original-envelope = embedded");
    }
    auto typo = cfg("[srs]\noriginal-envelope = db\n");
    ASSERT_FALSE(typo.ok());
    EXPECT_NE(typo.error().message.find("'db' is not embedded, database or auto"),
              std::string::npos)
        << typo.error().message;
}

TEST_F(SrsAliasTest, LongSenderLeavesAsItsAliasAndItsBounceComesBack) {
    auto o = forward(kLong, store.get());
    ASSERT_TRUE(o.eom.new_sender.has_value()) << o.eom.log_line;
    EXPECT_EQ(*o.eom.new_sender, srs(kAlias));
    EXPECT_EQ(o.eom.new_sender->rfind("SRS0=", 0), 0u);
    EXPECT_NE(o.eom.log_line.find(" reason=srs0-alias"), std::string::npos) << o.eom.log_line;
    EXPECT_EQ(metrics.get(Counter::srs_aliases_written), 1u);
    EXPECT_EQ(metrics.get(Counter::srs_rewritten), 1u);
    EXPECT_EQ(**store->alias(kAlias, kNow), kLong);

    // The bounce, days later, in lower case: rewritten to the 98-octet sender.
    std::string back = srs(kAlias, kNow - 3 * 86400);
    for (auto& ch : back) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    auto b = bounce_to(back, store.get());
    ASSERT_TRUE(b.reached_eom);
    EXPECT_EQ(b.eom.add_recipients, std::vector<std::string>{kLong});
}

TEST_F(SrsAliasTest, AutoEmbedsWhatFitsDatabaseStoresEverySender) {
    auto o = forward("carol@foreign.example", store.get());
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(*o.eom.new_sender, srs("carol@foreign.example"));
    EXPECT_EQ(metrics.get(Counter::srs_aliases_written), 0u);

    config.srs_original_envelope = OriginalEnvelope::database;
    o = forward("carol@foreign.example", store.get());
    EXPECT_EQ(*o.eom.new_sender, srs(srs_alias("carol@foreign.example")));
    EXPECT_EQ(metrics.get(Counter::srs_aliases_written), 1u);
    // Another forwarder's SRS0 still becomes SRS1, as postsrsd 2 does.
    o = forward("SRS0=abcd=2W=a.example=u@other-forwarder.example", store.get());
    EXPECT_EQ(o.eom.new_sender->rfind("SRS1=", 0), 0u) << *o.eom.new_sender;
    EXPECT_EQ(metrics.get(Counter::srs_aliases_written), 1u);

    // embedded: the long sender goes out unchanged, as before.
    config.srs_original_envelope = OriginalEnvelope::embedded;
    o = forward(kLong, store.get());
    EXPECT_FALSE(o.eom.new_sender.has_value());
    EXPECT_NE(o.eom.log_line.find(" reason=srs-refused"), std::string::npos) << o.eom.log_line;
    EXPECT_EQ(metrics.get(Counter::srs_aliases_written), 1u);
    EXPECT_EQ(metrics.get(Counter::srs_too_long), 1u);  // and counted
    MapAnswer m = lookup(*build(config), "forward", kLong, kNow, store.get());
    EXPECT_EQ(m.status, MapStatus::notfound);
    EXPECT_TRUE(m.too_long);
    EXPECT_FALSE(lookup(*build(config), "forward", "c@foreign.example", kNow).too_long);
}

// Only mail that is forwarded writes an alias.
TEST_F(SrsAliasTest, NoAliasWrittenWhenNothingIsForwarded) {
    Transaction t;
    t.client = "192.0.2.10";
    t.sender = "<" + kLong + ">";
    t.recipients = {"<alice@ours.example>"};
    auto o = send(t, store.get());
    EXPECT_FALSE(o.eom.new_sender.has_value());
    EXPECT_FALSE(store->alias(kAlias, kNow)->has_value());
    EXPECT_EQ(metrics.get(Counter::srs_aliases_written), 0u);
}

TEST_F(SrsAliasTest, UnknownOrExpiredAliasRefusedLikeAForgery) {
    ASSERT_TRUE(store->put_alias(kAlias, kLong, kNow - 30 * 86400, 21 * 86400).ok());  // expired
    auto o = bounce_to(srs(kAlias), store.get());
    ASSERT_EQ(o.rcpts.size(), 1u);
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
    EXPECT_NE(o.rcpts[0].log_line.find(" check=bad-signature:unknown-alias "), std::string::npos)
        << o.rcpts[0].log_line;
    EXPECT_NE(o.rcpts[0].text.find("SRS alias 177RE26INPKI1O95KN4J23EVADPI3JDD@1 unknown"),
              std::string::npos)
        << o.rcpts[0].text;
    EXPECT_EQ(metrics.get(Counter::rejected_bad_signature), 1u);
    // A forged hash on an alias is the ordinary bad signature.
    auto f =
        bounce_to("SRS0=FAKE=2W=1=177RE26INPKI1O95KN4J23EVADPI3JDD@fwd.ours.example", store.get());
    EXPECT_NE(f.rcpts[0].log_line.find(" check=bad-signature:"), std::string::npos);
    EXPECT_EQ(f.rcpts[0].log_line.find("unknown-alias"), std::string::npos);
}

TEST_F(SrsAliasTest, StoreDownFollowsOnStateError) {
    backstop::testing::DownStore down;
    config.on_state_error = Action::tempfail;
    auto o = forward(kLong, &down);
    EXPECT_EQ(o.eom.decision.step, Step::tempfail) << o.eom.log_line;
    EXPECT_FALSE(o.eom.new_sender.has_value());
    EXPECT_NE(o.eom.log_line.find(" verdict=tempfail "), std::string::npos) << o.eom.log_line;
    auto b = bounce_to(srs(kAlias), &down);
    EXPECT_EQ(b.rcpts[0].step, Step::tempfail);
    EXPECT_NE(b.rcpts[0].log_line.find(" check=state-error "), std::string::npos);

    config.on_state_error = Action::accept;
    o = forward(kLong, &down);
    EXPECT_EQ(o.eom.decision.step, Step::proceed);
    EXPECT_FALSE(o.eom.new_sender.has_value());  // out unchanged, as if embedded
    EXPECT_NE(o.eom.log_line.find(" reason=srs-refused "), std::string::npos) << o.eom.log_line;
    EXPECT_NE(o.eom.log_line.find("state-error=\"this state store keeps no SRS aliases\""),
              std::string::npos)
        << o.eom.log_line;
    EXPECT_EQ(metrics.get(Counter::srs_aliases_written), 0u);
}

TEST_F(SrsAliasTest, SocketmapForwardAndReverse) {
    auto p = build(config);
    MapAnswer f = lookup(*p, "forward", kLong, kNow, store.get());
    ASSERT_EQ(f.status, MapStatus::ok) << f.why;
    EXPECT_EQ(f.value, srs(kAlias));
    EXPECT_TRUE(f.alias_written);
    MapAnswer r = lookup(*p, "reverse", f.value, kNow, store.get());
    ASSERT_EQ(r.status, MapStatus::ok) << r.why;
    EXPECT_EQ(r.value, kLong);
    // A short sender writes nothing.
    MapAnswer s = lookup(*p, "forward", "carol@foreign.example", kNow, store.get());
    EXPECT_EQ(s.status, MapStatus::ok);
    EXPECT_FALSE(s.alias_written);
    // No record: not found, with its own reason.
    MapAnswer u =
        lookup(*p, "reverse", srs(srs_alias("nobody@foreign.example")), kNow, store.get());
    EXPECT_EQ(u.status, MapStatus::notfound);
    EXPECT_NE(u.why.find("unknown"), std::string::npos) << u.why;
    // Store down: reverse TEMP; forward TEMP only with on-state-error = tempfail.
    backstop::testing::DownStore down;
    EXPECT_EQ(lookup(*p, "reverse", f.value, kNow, &down).status, MapStatus::temp);
    EXPECT_EQ(lookup(*p, "forward", kLong, kNow, &down).status, MapStatus::notfound);
    config.on_state_error = Action::tempfail;
    EXPECT_EQ(lookup(*build(config), "forward", kLong, kNow, &down).status, MapStatus::temp);
}
