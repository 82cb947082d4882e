-- Helper snax service for test_snax.lua (not a test itself): a counter with request
-- (response.*) and one-way (accept.*) handlers.
local skynet = require "skynet"

local count = 0
local init_args
local records = {}

function init(...)
	init_args = table.pack(...)
end

function exit(...)
	skynet.error("snax_counter exit", ...)
end

function response.get()
	return count
end

function response.args()
	return table.unpack(init_args, 1, init_args.n)
end

function response.echo(...)
	return ...
end

function response.fail(msg)
	error(msg)
end

function response.records()
	return records
end

function accept.add(n)
	count = count + n
end

function accept.record(x)
	records[#records + 1] = x
end
