-- bootstrap: the first Lua service of a node. It brings up the system services
-- in a fixed order (launcher, harbor slave, datacenter, service manager, the
-- optional TLS holder), starts the configured `start` service and then leaves.
-- The order is observable: it decides the handle numbers seen in the log.
local skynet = require "skynet"
require "skynet.manager"

-- A slave that cannot start leaves the node unusable, so give up at once.
local function start_slave(name)
	local ok, slave = pcall(skynet.newservice, name)
	if not ok then
		skynet.abort()
	end
	skynet.name(".cslave", slave)
end

local function start_harbor_system()
	local harbor_id = tonumber(skynet.getenv "harbor" or 0)
	local standalone = skynet.getenv "standalone"
	if harbor_id == 0 then
		-- A single node is always its own master; other services learn this
		-- from the env, so record it there.
		assert(standalone == nil)
		skynet.setenv("standalone", "true")
		start_slave "cdummy"
		return true
	end
	if standalone and not pcall(skynet.newservice, "cmaster") then
		skynet.abort()
	end
	start_slave "cslave"
	return standalone ~= nil
end

-- ltls keeps process-wide OpenSSL state; one unique holder service owns it.
local function start_tls_holder()
	local service = require "skynet.service"
	service.new("ltls_holder", function()
		local tls = require "ltls.init.c"
		tls.constructor()
	end)
end

skynet.start(function()
	local launcher = assert(skynet.launch("snlua", "launcher"))
	skynet.name(".launcher", launcher)

	if start_harbor_system() then
		skynet.name("DATACENTER", skynet.newservice "datacenterd")
	end
	skynet.newservice "service_mgr"

	if skynet.getenv "enablessl" == "true" then
		start_tls_holder()
	end

	pcall(skynet.newservice, skynet.getenv "start" or "main")
	skynet.exit()
end)
