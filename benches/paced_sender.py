"""What voicesim's paced calls are compared with: a minimal asyncio + websockets client doing
the same wire work (benches/paced.rs).

    python paced_sender.py URL CALLS SECONDS RAMP

CALLS calls at once (started evenly over RAMP seconds), each a Twilio Media Stream (connected, start, then 20 ms of 8 kHz mu-law
silence per media message on an absolute schedule, stop). Prints what the process used:
{"cpu_s": ..., "hwm_kb": ..., "base_kb": ...}.
"""

import asyncio
import base64
import json
import resource
import sys
import time

import websockets

SILENCE = base64.b64encode(b"\xff" * 160).decode()


async def call(url: str, index: int, seconds: float, delay: float) -> None:
    await asyncio.sleep(delay)
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
                            "payload": SILENCE,
                        },
                    }
                )
            )
        await ws.send(json.dumps({"event": "stop", "streamSid": sid}))


async def main() -> None:
    url, calls, seconds, ramp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = resource.getrusage(resource.RUSAGE_SELF)
    base_kb = before.ru_maxrss
    await asyncio.gather(*(call(url, i, seconds, ramp * i / calls) for i in range(calls)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(json.dumps({"cpu_s": cpu, "hwm_kb": after.ru_maxrss, "base_kb": base_kb}))


asyncio.run(main())
