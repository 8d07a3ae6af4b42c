-- miltertest: a bounce from outside (client 127.0.0.2) to an unsigned local address
-- is refused at RCPT.
--   miltertest -D socket=inet:8891@127.0.0.1 -D rcpt=alice@ours.example -s t-unsigned-bounce.lua
-- (-D port=PORT stands for socket=inet:PORT@127.0.0.1; rcpt defaults to alice@ours.example.)
local spec = socket or ("inet:" .. port .. "@127.0.0.1")
local to = rcpt or "alice@ours.example"
local conn = mt.connect(spec, 20, 0.1)
if conn == nil then error("cannot connect to backstop-milter at " .. spec) end

if mt.conninfo(conn, "mx.remote.example", "127.0.0.2") ~= nil then error("conninfo failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo: unexpected reply") end

if mt.mailfrom(conn, "<>") ~= nil then error("mailfrom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mailfrom: unexpected reply") end

mt.macro(conn, SMFIC_RCPT, "i", "LUA0001")
if mt.rcptto(conn, "<" .. to .. ">") ~= nil then error("rcptto failed") end
-- A REPLYCODE ("550 5.7.1 ..."), not the MTA's default reject.
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("rcptto: " .. to .. " was not refused with a reply code") end

mt.disconnect(conn)
mt.echo("bounce from 127.0.0.2 to " .. to .. ": refused at RCPT (the milter's log shows the reply)")
