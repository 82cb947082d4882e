-- Helper service for the tests (not a test itself): its start function raises, so
-- launching it must fail.
local skynet = require "skynet"

skynet.start(function()
	error("svc_failing start boom")
end)
