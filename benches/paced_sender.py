"""What voicesim's paced calls are compared with: a minimal asyncio + websockets client doing
the same wire work (benches/paced.rs).

    python paced_sender.py URL CALLS SECONDS RAMP
    python paced_sender.py URL CALLS LENGTHS RAMP HOLD

CALLS calls at once (started evenly over RAMP seconds), each a Twilio Media Stream (connected,
start, then 20 ms of 8 kHz mu-law per media message on an absolute schedule, stop): SECONDS
long; or, with HOLD, each call as long as the next of LENGTHS (seconds, comma-separated) and
replaced as it ends until RAMP + HOLD seconds have passed (call churn). Prints what the process
used: {"cpu_s": ..., "hwm_kb": ..., "base_kb": ..., "call_seconds": ...}.
"""

import asyncio
import base64
import json
import os
import resource
import sys
import time

import websockets

SILENCE = base64.b64encode(b"\xff" * 160).decode()
# Noise for churned calls: random frames made once, sent in turn.
NOISE = [base64.b64encode(os.urandom(160)).decode() for _ in range(64)]
CALL_SECONDS = 0.0


async def call(url: str, index: int, seconds: float, delay: float, noise: bool = False) -> None:
    global CALL_SECONDS
    await asyncio.sleep(delay)
    CALL_SECONDS += seconds
    sid = f"MZ{index:032x}"
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": "1",
                    "streamSid": sid,
                    "start": {
                        "streamSid": sid,
                        "callSid": f"CA{index:032x}",
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                        "customParameters": {},
                    },
                }
            )
        )
        start = time.monotonic()
        for k in range(int(seconds * 50)):
            delay = start + k * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(
                json.dumps(
                    {
                        "event": "media",
                        "sequenceNumber": str(k + 2),
                        "streamSid": sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(k + 1),
                            "timestamp": str(k * 20),
                            "payload": NOISE[k % len(NOISE)] if noise else SILENCE,
                        },
                    }
                )
            )
        await ws.send(json.dumps({"event": "stop", "streamSid": sid}))


async def slot(url: str, index: int, calls: int, lengths: list, ramp: float, hold: float) -> None:
    """Calls one after another from this slot's moment in the ramp until the hold is over."""
    begin = time.monotonic()
    await asyncio.sleep(ramp * index / calls)
    k = 0
    while time.monotonic() - begin < ramp + hold:
        await call(url, index * 10_000 + k, lengths[(index + k) % len(lengths)], 0.0, noise=True)
        k += 1


async def main() -> None:
    url, calls = sys.argv[1], int(sys.argv[2])
    ramp = float(sys.argv[4])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = resource.getrusage(resource.RUSAGE_SELF)
    base_kb = before.ru_maxrss
    if len(sys.argv) > 5:
        lengths, hold = [float(x) for x in sys.argv[3].split(",")], float(sys.argv[5])
        await asyncio.gather(*(slot(url, i, calls, lengths, ramp, hold) for i in range(calls)))
    else:
        seconds = float(sys.argv[3])
        await asyncio.gather(*(call(url, i, seconds, ramp * i / calls) for i in range(calls)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(json.dumps({"cpu_s": cpu, "hwm_kb": after.ru_maxrss, "base_kb": base_kb, "call_seconds": CALL_SECONDS}))


asyncio.run(main())
