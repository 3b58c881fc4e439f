-- wrk script: POSTs SMS webhooks whose provider ids no other request of the
-- run repeats: "<prefix>-<thread>-<n>", the prefix given after "--" on the
-- command line (unique per measurement). At the end it prints one line,
-- "WRK_JSON {...}", that bench/scenarios/ingest.py reads.
-- Latencies are wrk's: from writing a request to reading its response (us).
--
-- Signed requests (the service_signed variant): a second argument names a file
-- written by bench/signed.py just before the run, one request per line
-- (webhook-id, webhook-timestamp, webhook-signature, body; tab-separated). It
-- is loaded in init(), before wrk's clock starts, and sent in order; past its
-- end it starts over, and "reused" in WRK_JSON counts those repeats.

local thread_count = 0
local threads = {}

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
   table.insert(threads, thread)
end

local headers = { ["Content-Type"] = "application/json" }
local body = '{"from":"+18045551234","to":"+12016661234","type":"sms",'
   .. '"messaging_provider_id":"%s-%d-%d","body":"benchmark message",'
   .. '"attachments":null,"timestamp":"2024-11-01T14:00:00Z"}'

local ids, stamps, signatures, bodies = {}, {}, {}, {}
local count = 0

function init(args)
   prefix = args[1] or "wrk"
   n = 0
   reused = 0
   if args[2] then
      for line in io.lines(args[2]) do
         local id, stamp, signature, signed_body =
            line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)$")
         count = count + 1
         ids[count], stamps[count], signatures[count], bodies[count] =
            id, stamp, signature, signed_body
      end
   end
end

local function signed_request()
   n = n + 1
   local i = n
   if i > count then
      reused = reused + 1
      i = (n - 1) % count + 1
   end
   headers["webhook-id"] = ids[i]
   headers["webhook-timestamp"] = stamps[i]
   headers["webhook-signature"] = signatures[i]
   return wrk.format("POST", nil, headers, bodies[i])
end

function request()
   if count > 0 then
      return signed_request()
   end
   n = n + 1
   return wrk.format("POST", nil, headers, string.format(body, prefix, tid, n))
end

function done(summary, latency, requests)
   local e = summary.errors
   local repeats = 0
   for _, thread in ipairs(threads) do
      repeats = repeats + (thread:get("reused") or 0)
   end
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,'
         .. '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,'
         .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"reused":%d}\n',
      summary.requests, summary.duration, e.status,
      e.connect + e.read + e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, repeats))
end
