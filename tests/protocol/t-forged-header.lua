-- miltertest: an X-Backstop-Result header from outside (client 127.0.0.2) is deleted.
--   miltertest -D socket=inet:8891@127.0.0.1 -s t-forged-header.lua (or -D port=PORT)
local spec = socket or ("inet:" .. port .. "@127.0.0.1")
local conn = mt.connect(spec, 20, 0.1)
if conn == nil then error("cannot connect to backstop-milter at " .. spec) end

if mt.conninfo(conn, "mx.remote.example", "127.0.0.2") ~= nil then error("conninfo failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo: unexpected reply") end
if mt.mailfrom(conn, "<someone@remote.example>") ~= nil then error("mailfrom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mailfrom: unexpected reply") end
mt.macro(conn, SMFIC_RCPT, "i", "LUA0003")
if mt.rcptto(conn, "<alice@ours.example>") ~= nil then error("rcptto failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("rcptto: unexpected reply") end

if mt.header(conn, "From", "someone@remote.example") ~= nil then error("header failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("header: unexpected reply") end
if mt.header(conn, "X-Backstop-Result", "pass (forged)") ~= nil then error("header failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("header: unexpected reply") end
if mt.eoh(conn) ~= nil then error("eoh failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eoh: unexpected reply") end
if mt.bodystring(conn, "Hello.\r\n") ~= nil then error("body failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("body: unexpected reply") end
if mt.eom(conn) ~= nil then error("eom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eom: unexpected reply") end

if not mt.eom_check(conn, MT_HDRDELETE, "X-Backstop-Result") then
    error("the forged X-Backstop-Result header was not deleted")
end

mt.disconnect(conn)
mt.echo("message from 127.0.0.2 with a forged X-Backstop-Result header: the header is deleted")
