-- service_provider (a unique service): backs lualib/skynet/service.lua. It
-- starts one service_cell per name, boots it with the dumped main function
-- sent by service.new, and hands the cell's address to every requester.
local skynet = require "skynet"

-- name -> record. A record starts with `queue` (response closures waiting
-- for the address); once the boot is over `queue` is dropped and either
-- `address` or `error` is set. `booting` marks a boot in progress.
local records = setmetatable({}, {
	__index = function(t, name)
		local record = { queue = {} }
		t[name] = record
		return record
	end,
})

local provider = {}

-- Load the code into the fresh cell and remember how it was started (shown
-- by the debug INFO command).
local function boot(address, record, code, ...)
	skynet.call(address, "lua", "init", code, ...)
	local args = table.pack(...)
	if args.n > 0 then
		for i = 1, args.n do
			args[i] = tostring(args[i])
		end
		record.init = table.concat(args, ",")
	end
	record.time = skynet.time()
end

local function finish(record, ok, ...)
	for _, reply in ipairs(record.queue) do
		reply(ok, ...)
	end
	record.queue = nil
end

function provider.launch(name, code, ...)
	local record = records[name]
	if record.address then
		return skynet.retpack(record.address)
	end
	if record.booting then
		table.insert(record.queue, skynet.response())
		return
	end
	record.booting = true
	record.queue = record.queue or {}
	local ok, address = pcall(skynet.newservice, "service_cell", name)
	local err
	if ok then
		ok, err = xpcall(boot, debug.traceback, address, record, code, ...)
	else
		err, address = address, nil
	end
	record.booting = nil
	if not ok then
		if address then
			skynet.send(address, "debug", "EXIT")
		end
		record.error = err
		finish(record, false)
		error(err)
	end
	record.address = address
	finish(record, true, address)
	skynet.retpack(address)
end

-- Waits for a boot in progress (or one not yet requested).
function provider.query(name)
	local record = records[name]
	if record.queue then
		table.insert(record.queue, skynet.response())
	elseif record.address then
		skynet.retpack(record.address)
	else
		error(record.error)
	end
end

-- Non-blocking probe: (address) when ready, (nil, true) while booting,
-- nothing when unknown; raises the boot error after a failure.
function provider.test(name)
	local record = records[name]
	if record.booting then
		skynet.retpack(nil, true)
	elseif record.address then
		skynet.retpack(record.address)
	elseif record.error then
		error(record.error)
	else
		skynet.ret()
	end
end

-- Forget the name and return its address so the caller can kill it; a name
-- still booting can't be closed.
function provider.close(name)
	local record = records[name]
	if record.booting then
		return skynet.retpack(nil)
	end
	records[name] = nil
	skynet.retpack(record.address)
end

local function info()
	local list = {}
	for name, record in pairs(records) do
		local status
		if record.booting then
			status = "booting"
		elseif record.queue then
			status = "waiting(" .. #record.queue .. ")"
		end
		list[skynet.address(record.address)] = {
			init = record.init,
			name = name,
			time = record.time and os.date("%Y %b %d %T %z", math.floor(record.time)),
			status = status,
		}
	end
	return list
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		provider[cmd](...)
	end)
	skynet.info_func(info)
end)
