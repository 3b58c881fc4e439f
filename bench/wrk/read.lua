-- wrk script: GETs of the URL on the command line, for the list reads of
-- bench/scenarios/growth.py. The API key given after "--" goes in the
-- Authorization header (a service with DATABASE_URL set asks for one). At the
-- end it prints the "WRK_JSON {...}" line that webhook.lua prints, for the same
-- reader; responses other than 2xx count as status errors.

function init(args)
   if args[1] then
      wrk.headers["Authorization"] = "Bearer " .. args[1]
   end
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
