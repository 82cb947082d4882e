-- skynet.datasheet: read a datasheet in place. `query(name)` gives a read-only table
-- over the newest document (skynet.datasheet.core proxies, filled level by level on
-- first access); a coroutine per name follows new versions, re-pointing every proxy
-- of the old document to the new one and telling the registry it let the old go.
local skynet = require "skynet"
local service = require "skynet.service"
local core = require "skynet.datasheet.core"

local address

skynet.init(function()
	address = service.query "datasheet"
end)

local datasheet = {}

-- name -> { object, handle, error, waiting }; collected when the VM closes, which
-- releases everything this service held
local sheets = setmetatable({}, {
	__gc = function()
		if address then
			skynet.send(address, "lua", "close")
		end
	end,
})

local function follow(sheet)
	while true do
		local handle = sheet.handle
		local ok, newhandle = pcall(skynet.call, address, "lua", "monitor", handle)
		if not ok or not newhandle then
			return
		end
		core.update(sheet.object, newhandle)
		sheet.handle = newhandle
		skynet.send(address, "lua", "release", handle)
	end
end

function datasheet.query(name)
	local sheet = sheets[name]
	if not sheet then
		sheet = { waiting = {} }
		sheets[name] = sheet
		local ok, handle = pcall(skynet.call, address, "lua", "query", name)
		if ok then
			sheet.handle = handle
			sheet.object = core.new(handle)
			skynet.fork(follow, sheet)
		else
			sheet.error = handle
		end
		local waiting = sheet.waiting
		sheet.waiting = nil
		for _, co in ipairs(waiting) do
			skynet.wakeup(co)
		end
	elseif sheet.waiting then
		local co = coroutine.running()
		table.insert(sheet.waiting, co)
		skynet.wait(co)
	end
	if sheet.error then
		error(sheet.error)
	end
	return sheet.object
end

return datasheet
