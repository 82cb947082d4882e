-- skynet/injectcode.lua: evaluate source text as if it were written inside a
-- stack frame of a coroutine (used by skynet.remotedebug).
--
-- injectcode(source, co, level, ext) -> true, results... | false, error
--   co     thread owning the frame (default: the running thread)
--   level  stack level in co; for the running thread 0 is our caller
--   ext    table of extra names visible to the code (e.g. a redirected print)
--
-- The code can read and assign the frame's locals, upvalues and varargs
-- ("..."). Upvalues are shared with the frame; locals are copied in and
-- written back to the frame after the code ran successfully.

local CHUNK = [[
%s
return function(...)
%s
end, function()
return {%s}
end
]]

local function is_name(s)
	return s:match "^[%a_][%w_]*$" ~= nil
end

return function(source, co, level, ext)
	local running = coroutine.running()
	co = co or running
	level = level or 0
	-- inside this function level 1 is ourselves, so our caller is 2
	local frame = co == running and level + 2 or level

	local info = debug.getinfo(co, frame, "f")
	local owner = info and info.func
	if owner == nil then
		return false, "Invalid level"
	end

	-- name -> slot and value; a later (inner) local shadows an earlier one
	local local_slot, local_value = {}, {}
	local i = 1
	while true do
		local name, value = debug.getlocal(co, frame, i)
		if name == nil then
			break
		end
		if is_name(name) then
			local_slot[name] = i
			local_value[name] = value
		end
		i = i + 1
	end

	local upvalue_slot = {}
	i = 1
	while true do
		local name = debug.getupvalue(owner, i)
		if name == nil then
			break
		end
		if is_name(name) then
			upvalue_slot[name] = i
		end
		i = i + 1
	end

	local varargs = {}
	local nvarargs = 0
	while true do
		local name, value = debug.getlocal(co, frame, -(nvarargs + 1))
		if name == nil then
			break
		end
		nvarargs = nvarargs + 1
		varargs[nvarargs] = value
	end

	-- declare every visible name as a chunk local so the code binds to it
	local names, writeback = {}, {}
	for name in pairs(ext or {}) do
		if is_name(name) then
			names[#names + 1] = name
		end
	end
	for name in pairs(upvalue_slot) do
		names[#names + 1] = name
	end
	for name, slot in pairs(local_slot) do
		names[#names + 1] = name
		writeback[#writeback + 1] = string.format("[%d]=%s,", slot, name)
	end
	local declare = #names > 0 and ("local " .. table.concat(names, ",")) or ""
	local text = string.format(CHUNK, declare, source, table.concat(writeback))
	local loader, err = load(text, "=(debug)")
	if loader == nil then
		return false, err
	end
	local func, update = loader()

	-- bind the chunk locals: frame locals first, then frame upvalues, then ext
	local function bind(closure)
		local n = 1
		while true do
			local name = debug.getupvalue(closure, n)
			if name == nil then
				break
			end
			if local_slot[name] then
				debug.setupvalue(closure, n, local_value[name])
			elseif upvalue_slot[name] then
				debug.upvaluejoin(closure, n, owner, upvalue_slot[name])
			elseif ext and ext[name] ~= nil then
				debug.setupvalue(closure, n, ext[name])
			end
			n = n + 1
		end
	end
	bind(func)
	bind(update)

	local results = table.pack(pcall(func, table.unpack(varargs, 1, nvarargs)))
	if not results[1] then
		return false, results[2]
	end
	for slot, value in pairs(update()) do
		debug.setlocal(co, frame, slot, value)
	end
	return table.unpack(results, 1, results.n)
end
