-- wrk script: POSTs SMS webhooks whose provider ids no other request of the
-- run repeats: "<prefix>-<thread>-<n>", the prefix given after "--" on the
-- command line (unique per measurement). At the end it prints one line,
-- "WRK_JSON {...}", that bench/scenarios/ingest.py reads.
-- Latencies are wrk's: from writing a request to reading its response (us).

local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
end

function init(args)
   prefix = args[1] or "wrk"
   n = 0
end

local headers = { ["Content-Type"] = "application/json" }
local body = '{"from":"+18045551234","to":"+12016661234","type":"sms",'
   .. '"messaging_provider_id":"%s-%d-%d","body":"benchmark message",'
   .. '"attachments":null,"timestamp":"2024-11-01T14:00:00Z"}'

function request()
   n = n + 1
   return wrk.format("POST", nil, headers, string.format(body, prefix, tid, n))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,'
         .. '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,'
         .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, e.status,
      e.connect + e.read + e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
