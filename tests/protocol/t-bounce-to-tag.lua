-- miltertest: a bounce from outside (client 127.0.0.2) to a valid BATV tag is
-- accepted and, at EOM, the tagged recipient is replaced by the real one.
--   miltertest -D socket=inet:8891@127.0.0.1 -D tag=prvs=...=alice@ours.example -s t-bounce-to-tag.lua
-- (-D port=PORT stands for socket=inet:PORT@127.0.0.1.)
local spec = socket or ("inet:" .. port .. "@127.0.0.1")
local real = (string.gsub(tag, "^[Pp][Rr][Vv][Ss]=[^=@]+=", ""))
local conn = mt.connect(spec, 20, 0.1)
if conn == nil then error("cannot connect to backstop-milter at " .. spec) end

if mt.conninfo(conn, "mx.remote.example", "127.0.0.2") ~= nil then error("conninfo failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo: unexpected reply") end
if mt.mailfrom(conn, "<>") ~= nil then error("mailfrom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mailfrom: unexpected reply") end

mt.macro(conn, SMFIC_RCPT, "i", "LUA0002")
if mt.rcptto(conn, "<" .. tag .. ">") ~= nil then error("rcptto failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("rcptto: the valid tag " .. tag .. " was refused") end

if mt.header(conn, "From", "MAILER-DAEMON@mx.remote.example") ~= nil then error("header failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("header: unexpected reply") end
if mt.eoh(conn) ~= nil then error("eoh failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eoh: unexpected reply") end
if mt.bodystring(conn, "The original message follows.\r\n") ~= nil then error("body failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("body: unexpected reply") end
if mt.eom(conn) ~= nil then error("eom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eom: unexpected reply") end

-- The address may come with or without angle brackets; MTAs accept both.
if not (mt.eom_check(conn, MT_RCPTDELETE, "<" .. tag .. ">") or
        mt.eom_check(conn, MT_RCPTDELETE, tag)) then
    error("the tagged recipient was not deleted")
end
if not (mt.eom_check(conn, MT_RCPTADD, "<" .. real .. ">") or
        mt.eom_check(conn, MT_RCPTADD, real)) then
    error("the real recipient " .. real .. " was not added")
end

mt.disconnect(conn)
mt.echo("bounce from 127.0.0.2 to " .. tag .. ": accepted, recipient rewritten to " .. real)
