// Packets longer than the protocol's 64 KiB, as an MTA could send them (a header
// longer than Postfix's 60,000-byte milter cap, Sendmail with a raised
// MaxHeadersLength, a body chunk from a broken MTA): both engines send no reply and
// close the connection, so the MTA applies its milter failure action (Postfix:
// milter_default_action, Sendmail: the F= flags) to the message. Never an accept of
// a message the milter has not seen whole. A packet of exactly 64 KiB is answered.
#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>

#include "milter_client.hpp"
#include "milter_process.hpp"

namespace backstop::test {
namespace {

constexpr std::size_t kLimit = 65536;  // longest packet, command byte included

// The outbound message left BATV-signed: the milter saw all of it.
void expect_signed(const EomResult& eom) {
    ASSERT_TRUE(eom.new_sender.has_value()) << eom.action_codes;
    EXPECT_EQ(eom.new_sender->rfind("<prvs=", 0), 0u) << *eom.new_sender;
    EXPECT_NE(eom.new_sender->find("=alice@ours.example>"), std::string::npos) << *eom.new_sender;
}

class OversizedPacketTest : public ::testing::Test {
  protected:
    void TearDown() override {
        EXPECT_TRUE(milter_.alive()) << "the daemon died";
        if (HasFailure()) {
            auto log = milter_.log();
            std::cerr << "--- backstop-milter stderr (tail) ---\n"
                      << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
        }
    }

    // A connection that is in a message from an internal client (outbound): MAIL,
    // RCPT and DATA answered, headers next.
    MilterClient in_message() {
        auto client = milter_.client();
        client.macros('C', {{"j", "mx.ours.example"}});
        EXPECT_TRUE(client.conn("localhost", '4', 40000, "127.0.0.1").proceeds());
        EXPECT_TRUE(client.helo("localhost").proceeds());
        client.macros('M', {{"i", "OVERSIZE1"}});
        EXPECT_TRUE(client.mail({"<alice@ours.example>"}).proceeds());
        EXPECT_TRUE(client.rcpt({"<bob@remote.example>"}).proceeds());
        EXPECT_TRUE(client.data().proceeds());
        return client;
    }

    // Sends one packet of command and data (the MTA may find the socket closed while
    // it writes), then expects no reply at all, only the closed connection.
    void expect_closed_without_reply(MilterClient& client, char command, const std::string& data) {
        try {
            client.send_packet(command, data);
        } catch (const MilterError&) {
            // Closed while the rest of the packet was on its way: as expected.
        }
        try {
            auto [reply, text] = client.read_packet();
            ADD_FAILURE() << "a reply '" << reply << "' to a packet of " << data.size() + 1
                          << " bytes; want the connection closed without one";
        } catch (const MilterError& e) {
            // EOF or reset (unread bytes were left): the MTA sees a broken milter, not
            // an answer. A timeout would mean the daemon still waits for the packet.
            const std::string why = e.what();
            EXPECT_TRUE(why == "the milter closed the connection" ||
                        why == "read from the milter: Connection reset by peer")
                << why;
        }
    }

    // The daemon still serves the next message in full.
    void expect_next_message_served() {
        auto client = in_message();
        EXPECT_TRUE(client.header("Subject", "after").proceeds());
        EXPECT_TRUE(client.eoh().proceeds());
        EXPECT_TRUE(client.body("Hello.\r\n").proceeds());
        EomResult eom = client.eom();
        EXPECT_TRUE(eom.response.proceeds()) << eom.response.action;
        expect_signed(eom);
        client.quit();
    }

    // The log says why (native: the engine's own line; libmilter: the abort it reports).
    void expect_logged(std::size_t packet_length) {
        if (engine_under_test() == "native") {
            const std::string line = "protocol error: packet length " +
                                     std::to_string(packet_length) + " out of range (1..65536)";
            EXPECT_TRUE(milter_.wait_for_log(line, std::chrono::seconds(5))) << line;
        }
    }

    MilterProcess milter_;
};

// name\0value\0 with a value of the size that makes the packet `packet_length` long.
std::string header_data(std::size_t packet_length) {
    const std::string name = "References";
    std::string value(packet_length - 1 - name.size() - 2, 'r');
    return name + '\0' + value + '\0';
}

TEST_F(OversizedPacketTest, HeaderOf64KiBIsAnswered) {
    auto client = in_message();
    std::string data = header_data(kLimit);
    ASSERT_EQ(data.size() + 1, kLimit);
    client.send_packet('L', data);  // no reply: headers are a no-reply step
    EXPECT_TRUE(client.eoh().proceeds());
    EXPECT_TRUE(client.body("Hello.\r\n").proceeds());
    EomResult eom = client.eom();
    EXPECT_TRUE(eom.response.proceeds()) << eom.response.action;
    expect_signed(eom);
    client.quit();
}

TEST_F(OversizedPacketTest, BodyChunkOf64KiBIsAnswered) {
    auto client = in_message();
    EXPECT_TRUE(client.eoh().proceeds());
    EXPECT_TRUE(client.body(std::string(kLimit - 1, 'b')).proceeds());
    EomResult eom = client.eom();
    EXPECT_TRUE(eom.response.proceeds()) << eom.response.action;
    expect_signed(eom);
    client.quit();
}

TEST_F(OversizedPacketTest, HeaderOf70KiBClosesWithoutReply) {
    auto client = in_message();
    expect_closed_without_reply(client, 'L', header_data(70 * 1024));
    expect_logged(70 * 1024);
    expect_next_message_served();
}

TEST_F(OversizedPacketTest, HeaderOverOneMiBClosesWithoutReply) {
    const std::size_t length = 1024 * 1024 + 4096;
    auto client = in_message();
    expect_closed_without_reply(client, 'L', header_data(length));
    expect_logged(length);
    expect_next_message_served();
}

TEST_F(OversizedPacketTest, BodyChunkOf70KiBClosesWithoutReply) {
    auto client = in_message();
    EXPECT_TRUE(client.eoh().proceeds());
    expect_closed_without_reply(client, 'B', std::string(70 * 1024 - 1, 'b'));
    expect_logged(70 * 1024);
    expect_next_message_served();
}

TEST_F(OversizedPacketTest, BodyChunkOverOneMiBClosesWithoutReply) {
    const std::size_t length = 1024 * 1024 + 4096;
    auto client = in_message();
    EXPECT_TRUE(client.eoh().proceeds());
    expect_closed_without_reply(client, 'B', std::string(length - 1, 'b'));
    expect_logged(length);
    expect_next_message_served();
}

}  // namespace
}  // namespace backstop::test
