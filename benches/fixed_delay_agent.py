"""A Twilio Media Streams agent whose timing does not depend on the machine: it answers every
caller turn with the same recording, DELAY ms after 500 ms of caller quiet, all of it sent at
once as Twilio bots send their speech (benches/reaction_busy.sh).

    python fixed_delay_agent.py PORT REPLY.wav DELAY_MS

REPLY.wav: 8 kHz mono PCM16. Prints "ready" once listening.
"""

import asyncio
import audioop
import base64
import json
import sys
import wave

import websockets

QUIET_MS = 500
# Frames quieter than this (RMS of PCM16) are silence: about 40 dB under the voice, where
# voicesim too says a voice has stopped (the call is clean, so silence is digital zero).
LOUD = 50


async def serve(ws, reply: bytes, delay: float) -> None:
    sid = None
    spoke, quiet_ms, answering = False, 0, None
    async for message in ws:
        event = json.loads(message)
        kind = event.get("event")
        if kind == "start":
            sid = event["start"]["streamSid"]
        elif kind == "media":
            pcm = audioop.ulaw2lin(base64.b64decode(event["media"]["payload"]), 2)
            if audioop.rms(pcm, 2) > LOUD:
                spoke, quiet_ms = True, 0
            elif spoke:
                quiet_ms += 20
                if quiet_ms >= QUIET_MS and answering is None:
                    spoke = False
                    answering = asyncio.create_task(answer(ws, sid, reply, delay))
                    answering.add_done_callback(lambda _: None)
            if answering is not None and answering.done():
                answering = None
        elif kind == "stop":
            break


async def answer(ws, sid: str, reply: bytes, delay: float) -> None:
    await asyncio.sleep(delay)
    payload = base64.b64encode(audioop.lin2ulaw(reply, 2)).decode()
    await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}}))
    await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "reply"}}))


async def main() -> None:
    port, path, delay_ms = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    with wave.open(path, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), path
        reply = w.readframes(w.getnframes())
    async with websockets.serve(lambda ws: serve(ws, reply, delay_ms / 1000), "127.0.0.1", port):
        print("ready", flush=True)
        await asyncio.Future()


asyncio.run(main())
