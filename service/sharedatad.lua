-- sharedatad: the host of skynet.sharedata. It builds each named table once outside
-- every VM (skynet.sharedata.core), answers queries with its pointer, and tells the
-- services that watch a name when a new version replaces it or it is deleted.
--
-- Reference counts: the host holds one on each current version; a query adds one that
-- the client drops ("confirm") once its box holds its own. A replaced or deleted
-- version is freed once its count reaches zero (checked on every confirm and every
-- ten seconds).
local skynet = require "skynet"
local core = require "skynet.sharedata.core"

local current = {}	-- name -> { conf = pointer, watchers = { response... } }
local retired = {}	-- pointer -> true, freed when nobody holds it

local NORET = {}

local function free_unheld()
	for conf in pairs(retired) do
		if core.getref(conf) <= 0 then
			retired[conf] = nil
			core.delete(conf)
		end
	end
end

local env_mt = { __index = _ENV }

-- The table `v` stands for: a table, "@file" or Lua source run with `...` (globals it
-- sets count when it returns no table), or nil for an empty one.
local function build(name, v, ...)
	local tv = type(v)
	if tv == "table" then
		return v
	elseif tv == "nil" then
		return {}
	elseif tv ~= "string" then
		error("Unknown data type " .. tv)
	end
	local env = setmetatable({}, env_mt)
	local f
	if v:sub(1, 1) == "@" then
		f = assert(loadfile(v:sub(2), "bt", env))
	else
		f = assert(load(v, "=" .. name, "bt", env))
	end
	local ret = f(...)
	setmetatable(env, nil)
	return type(ret) == "table" and ret or env
end

local function retire(entry, newconf)
	core.markdirty(entry.conf)
	retired[entry.conf] = true
	core.decref(entry.conf)
	for _, response in ipairs(entry.watchers) do
		if newconf then
			core.incref(newconf)
		end
		response(true, newconf)
	end
end

local CMD = {}

function CMD.new(name, v, ...)
	assert(current[name] == nil, name)
	local conf = core.new(build(name, v, ...))
	core.incref(conf)
	current[name] = { conf = conf, watchers = {} }
end

function CMD.update(name, v, ...)
	local conf = core.new(build(name, v, ...))
	core.incref(conf)
	local old = current[name]
	current[name] = { conf = conf, watchers = {} }
	if old then
		retire(old, conf)
	end
end

function CMD.delete(name)
	local old = assert(current[name], name)
	current[name] = nil
	retire(old, nil)
end

function CMD.query(name)
	local entry = assert(current[name], name)
	core.incref(entry.conf)
	return entry.conf
end

function CMD.confirm(conf)
	core.decref(conf)
	free_unheld()
	return NORET
end

-- Answers at once when `conf` is not the current version, else when it is replaced.
function CMD.monitor(name, conf)
	local entry = current[name]
	if not entry then
		return nil
	end
	if entry.conf ~= conf then
		core.incref(entry.conf)
		return entry.conf
	end
	table.insert(entry.watchers, skynet.response())
	return NORET
end

skynet.start(function()
	skynet.fork(function()
		while true do
			skynet.sleep(1000)
			free_unheld()
		end
	end)
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local r = assert(CMD[cmd], cmd)(...)
		if r ~= NORET then
			skynet.retpack(r)
		end
	end)
end)
