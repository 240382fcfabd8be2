"""Local emulator of Tencent Cloud Infinite (CI) for picjobs.

server.py    EmulatorConfig, running_emulator, EmulatorThread, serve_forever
app.py       route table and the order a request goes through
handlers.py  thin CI and COS handlers          control.py  /_emulator/ endpoints
backend.py   all state, no HTTP                 model.py    jobs, queues, templates
store.py     bucket folders and their index     wire.py     XML in and out
folders.py   which folders changed on disk
auth.py      signature verification             faults.py   fault injection
ratelimit.py token bucket                       errors.py   API errors
imaging.py   imageMogr2 processing with Pillow  stats.py    counters
templates.py the /template API                  callbacks.py job callbacks, sent
"""
