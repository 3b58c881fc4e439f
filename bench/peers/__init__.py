"""The peers of scenario 4, pgqueuer and procrastinate from PyPI (the `bench`
extra), each behind the same small interface so that one scenario drives both:

    install(url)                        their own schema, on an empty database
    seed(url, n)                        n no-op jobs, inserted in bulk
    enqueue(url, seconds, concurrency)  one job per transaction, as fast as it goes
    produce(url, rate, seconds)         one job per transaction at a fixed rate;
                                        each job carries its scheduled time
    work(url, stop, record)             a worker at the best settings found here,
                                        until stop is set; with record, each job
                                        appends now - its scheduled time (s)

and, for the drain against peers doing the same work (bench/peers/work.py):

    seed_work(url)                      one same-work job per event waiting in
                                        the (migrated) database
    work_same(url, stop, knob)          a worker of those jobs, until stop is set

The no-op jobs do nothing; the same-work jobs do what the service's worker does
for one event. bench/peers/cli.py runs each of these in a process of its own.
"""
