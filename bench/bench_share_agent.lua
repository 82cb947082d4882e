-- The agent of the sharetable/sharedata benchmarks: "read" takes the
-- configuration's pointer, reads 100 items through it and keeps it; "mem"
-- answers its Lua heap size after a full collection.
local skynet = require "skynet"

local held

local function read_sharetable(ptr, items)
	local core = require "skynet.sharetable.core"
	local t = core.clone(ptr)
	held = t
	local sum = 0
	for i = 1, items, items // 100 do
		local item = t.items[i]
		sum = sum + item.stats.hp + #item.name + #item.tags
	end
	return sum
end

local function read_sharedata(conf, items)
	local core = require "skynet.sharedata.core"
	held = core.box(conf)
	local list = core.index(conf, "items")
	local sum = 0
	for i = 1, items, items // 100 do
		local item = core.index(list, i)
		local stats = core.index(item, "stats")
		sum = sum + core.index(stats, "hp") + #core.index(item, "name")
			+ core.len(core.index(item, "tags"))
	end
	return sum
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, kind, ptr, items)
		if cmd == "read" then
			local read = kind == "sharetable" and read_sharetable or read_sharedata
			skynet.ret(skynet.pack(read(ptr, items)))
		else
			collectgarbage "collect"
			skynet.ret(skynet.pack(collectgarbage "count"))
		end
	end)
end)
