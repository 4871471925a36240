"""A small Pipecat bot: the agent of the Python example (examples/python, `pytest` calls it in
cafe noise) and of voicesim's interop tests (tests/pipecat.rs).

Pipecat's own code end to end: FastAPIWebsocketTransport with Pipecat's serializer for the
protocol (the telephony providers told apart by Pipecat's own parse_telephony_websocket, as
its runner does), Silero VAD, and a processor that greets, answers each finished caller turn
(or a key press ending in '#') with the next prepared recording, and interrupts itself with
broadcast_interruption() when the caller starts speaking over it. No cloud services: a real
bot would put speech-to-text, an LLM and text-to-speech where the recordings are.

    python bot.py --port 8790 --replies DIR    # DIR holds 0.wav, 1.wav, ... (16-bit mono)

Endpoints: /ws (Twilio, Telnyx, Plivo, Exotel), /vonage, /genesys, /pipecat (protobuf);
`?yields=0` makes a bot that talks over the caller instead of stopping. What the bot saw
(calls, key presses, barge-ins) is printed as JSON lines on stdout.
"""

import argparse
import asyncio
import json
import sys
import wave
from pathlib import Path

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputDTMFFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.genesys import GenesysAudioHookSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.serializers.vonage import VonageFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

CHUNK_MS = 20


def report(**event):
    print(json.dumps(event), flush=True)


def load(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, f"{path}: 16-bit mono only"
        return w.readframes(w.getnframes()), w.getframerate()


class Answerer(FrameProcessor):
    """Greets, then answers each caller turn with the next recording; yields to barge-ins."""

    def __init__(self, replies: list[tuple[bytes, int]], protocol: str, yields: bool):
        super().__init__()
        self._yields = yields
        self._replies = replies
        self._reply_index = 0
        self._protocol = protocol
        self._speaking = False
        self._keys = ""

    async def _say_next(self):
        if self._reply_index >= len(self._replies):
            return
        audio, rate = self._replies[self._reply_index]
        self._reply_index += 1
        # As a TTS service would: started, audio, stopped (the output transport tells the
        # pipeline the bot speaks from these, and drops what is queued on an interruption).
        context = f"reply-{self._reply_index}"
        step = rate * 2 * CHUNK_MS // 1000
        await self.push_frame(TTSStartedFrame(context_id=context))
        for i in range(0, len(audio), step):
            await self.push_frame(
                TTSAudioRawFrame(
                    audio=audio[i : i + step], sample_rate=rate, num_channels=1, context_id=context
                )
            )
        await self.push_frame(TTSStoppedFrame(context_id=context))

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            # Answer as a phone does, a moment after the line opens.
            await asyncio.sleep(0.3)
            await self._say_next()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame) and self._speaking:
            report(event="barge_in", protocol=self._protocol, yields=self._yields)
            if self._yields:
                self._speaking = False
                await self.broadcast_interruption()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            await self._say_next()
        elif isinstance(frame, InputDTMFFrame):
            digit = str(frame.button.value)
            report(event="dtmf", protocol=self._protocol, digit=digit)
            self._keys += digit
            if digit == "#":
                report(event="keys", protocol=self._protocol, keys=self._keys)
                self._keys = ""
                await self._say_next()


async def run_bot(websocket: WebSocket, serializer, protocol: str, replies, out_rate: int):
    yields = websocket.query_params.get("yields", "1") != "0"
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    vad = VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.5)))
    pipeline = Pipeline([transport.input(), vad, Answerer(replies, protocol, yields), transport.output()])
    task = PipelineTask(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=out_rate),
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport, _client):
        await task.cancel()

    report(event="call", protocol=protocol)
    await PipelineRunner(handle_sigint=False).run(task)


def app_for(replies) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def telephony(websocket: WebSocket):
        await websocket.accept()
        kind, data = await parse_telephony_websocket(websocket)
        if kind == "twilio":
            params = TwilioFrameSerializer.InputParams(auto_hang_up=False)
            serializer = TwilioFrameSerializer(data.stream_id, data.call_id, params=params)
        elif kind == "telnyx":
            params = TelnyxFrameSerializer.InputParams(auto_hang_up=False)
            serializer = TelnyxFrameSerializer(
                data.stream_id, data.outbound_encoding, "PCMU", params=params
            )
        elif kind == "plivo":
            params = PlivoFrameSerializer.InputParams(auto_hang_up=False)
            serializer = PlivoFrameSerializer(data.stream_id, data.call_id, params=params)
        elif kind == "exotel":
            serializer = ExotelFrameSerializer(data.stream_id, data.call_id)
        else:
            report(event="unrecognized", protocol=kind)
            await websocket.close()
            return
        await run_bot(websocket, serializer, kind, replies, 16000)

    @app.websocket("/vonage")
    async def vonage(websocket: WebSocket):
        await websocket.accept()
        await run_bot(websocket, VonageFrameSerializer(), "vonage", replies, 16000)

    @app.websocket("/genesys")
    async def genesys(websocket: WebSocket):
        await websocket.accept()
        await run_bot(websocket, GenesysAudioHookSerializer(), "genesys", replies, 16000)

    @app.websocket("/pipecat")
    async def protobuf(websocket: WebSocket):
        await websocket.accept()
        # Output at 24 kHz, input at 16 kHz: the client resamples what it hears.
        await run_bot(websocket, ProtobufFrameSerializer(), "pipecat", replies, 24000)

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", type=Path, required=True)
    args = parser.parse_args()
    replies = [load(p) for p in sorted(args.replies.glob("*.wav"), key=lambda p: int(p.stem))]
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    # Silero loads once here, so the first call does not pay for it.
    SileroVADAnalyzer()
    uvicorn.run(app_for(replies), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
