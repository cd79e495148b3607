-- POST pre-encoded JSON bodies (one per line of a file) round-robin, optionally with a bearer token, and print
-- wrk's summary as one JSON line (prefixed WRK_JSON) for benchmarks/load.py.
-- usage: wrk -s benchmarks/wrk/post.lua URL -- BODIES_FILE [TOKEN]

local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local path = args[1]
  local fh = assert(io.open(path, "r"), "cannot open bodies file " .. tostring(path))
  local headers = { ["Content-Type"] = "application/json" }
  if args[2] ~= nil and #args[2] > 0 then
    headers["Authorization"] = "Bearer " .. args[2]
  end
  prepared = {}
  for line in fh:lines() do
    if #line > 0 then
      prepared[#prepared + 1] = wrk.format("POST", nil, headers, line)
    end
  end
  fh:close()
  assert(#prepared > 0, "no bodies in " .. path)
  -- threads start at different points of the mix
  position = ((thread_id or 0) * 13) % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
