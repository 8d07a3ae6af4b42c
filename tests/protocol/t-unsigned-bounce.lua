-- miltertest: a bounce from outside to an unsigned local address is refused at RCPT.
-- Run by protocol_tests (Miltertest.*) with -D port=PORT against a running daemon.
local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 20, 0.1)
if conn == nil then error("cannot connect to backstop-milter on port " .. port) end

if mt.conninfo(conn, "mx.remote.example", "192.0.2.25") ~= nil then error("conninfo failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo: unexpected reply") end

if mt.mailfrom(conn, "<>") ~= nil then error("mailfrom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mailfrom: unexpected reply") end

mt.macro(conn, SMFIC_RCPT, "i", "LUA0001")
if mt.rcptto(conn, "<alice@ours.example>") ~= nil then error("rcptto failed") end
-- A REPLYCODE ("550 5.7.1 ..."), not the MTA's default reject.
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("rcptto: expected SMFIR_REPLYCODE") end

mt.disconnect(conn)
