-- counter: an example snax service (started with snax.newservice or
-- snax.uniqueservice "counter"). init(start) sets the first value,
-- post.add(n) adds without waiting, req.get() returns the current value.
local skynet = require "skynet"

local total

function init(start)
	total = start or 0
end

function exit()
	skynet.error("counter stops at " .. total)
end

function accept.add(n)
	total = total + n
end

function response.get()
	return total
end
