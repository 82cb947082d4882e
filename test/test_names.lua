-- Local names (.name): skynet.register, skynet.name, skynet.localname, calls by name,
-- duplicate registration refused, case sensitivity, names dying with their service;
-- the raw REG/QUERY/NAME command results; and global names on a harbor-0 node
-- (registered through cdummy, reachable by skynet.call and harbor.queryname).
local skynet = require "skynet"
require "skynet.manager"
local c = require "skynet.core"
local tester = require "tester"

local mode = ...

if mode == "slave" then
	local CMD = {}

	function CMD.register(name)
		skynet.register(name)
		skynet.retpack(true)
	end

	function CMD.whoami()
		skynet.retpack(skynet.self())
	end

	function CMD.quit()
		skynet.exit()
	end

	tester.serve(CMD)
	return
end

local eq, ok, raises = tester.eq, tester.ok, tester.raises

tester.run("test_names", function()
	local slave = skynet.newservice(SERVICE_NAME, "slave")

	-- REG without a name answers our own address, lowercase hex without padding
	eq(c.command("REG"), string.format(":%x", skynet.self()), "REG")

	eq(skynet.call(slave, "lua", "register", ".alpha"), true, "register")
	eq(skynet.localname(".alpha"), slave, "localname after register")
	eq(c.command("QUERY", ".alpha"), string.format(":%x", slave), "QUERY result text")
	eq(skynet.call(".alpha", "lua", "whoami"), slave, "call by name")
	eq(skynet.localname(".ALPHA"), nil, "names are case-sensitive")
	eq(skynet.localname(".nobody"), nil, "unknown name")

	-- a second service cannot take a registered name
	eq(c.command("REG", ".alpha"), nil, "duplicate REG refused")
	eq(skynet.localname(".alpha"), slave, "the name still belongs to the slave")

	-- naming another service; one service may have several names
	skynet.name(".beta", slave)
	eq(skynet.localname(".beta"), slave, "skynet.name")
	eq(c.command("NAME", ".gamma " .. skynet.address(slave)), "gamma", "NAME result")
	eq(skynet.call(".gamma", "lua", "whoami"), slave, "call by the third name")
	eq(c.command("NAME", ".delta :0"), nil, "NAME with address 0")
	eq(c.command("NAME", ".delta"), nil, "NAME without an address")
	eq(skynet.localname(".delta"), nil, "no name was set by the bad NAME commands")

	-- global names go through the harbor system (cdummy on a harbor-0 node)
	skynet.call(slave, "lua", "register", "GSLAVE")
	eq(skynet.call("GSLAVE", "lua", "whoami"), slave, "call by global name")
	local harbor = require "skynet.harbor"
	eq(harbor.queryname("GSLAVE"), slave, "harbor.queryname")
	skynet.name("GALIAS", slave)
	eq(skynet.call("GALIAS", "lua", "whoami"), slave, "skynet.name with a global name")
	-- the C side never registers global names itself
	eq(c.command("REG", "cglobal"), nil, "REG of a global name in C")

	-- names vanish with the service
	raises("call failed", skynet.call, slave, "lua", "quit")
	eq(skynet.localname(".alpha"), nil, ".alpha gone")
	eq(skynet.localname(".beta"), nil, ".beta gone")
	eq(skynet.send(".gamma", "lua", "whoami"), nil, "send to a vanished name")
	-- and can then be taken again
	skynet.register(".alpha")
	eq(skynet.localname(".alpha"), skynet.self(), "name reused")
end)
