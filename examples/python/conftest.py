"""The bot's replies, spoken once by voicesim's own text-to-speech (a real bot would speak with
its TTS service): replies/0.wav greets, replies/1.wav answers."""

import subprocess
from pathlib import Path

from voicesim import find_binary

REPLIES = [
    "Thanks for calling Acme. What is your order number?",
    "Order four five two one has shipped and arrives on Friday. Anything else?",
]


def pytest_sessionstart(session):
    replies = Path(__file__).parent / "replies"
    replies.mkdir(exist_ok=True)
    for i, text in enumerate(REPLIES):
        wav = replies / f"{i}.wav"
        if not wav.exists():
            subprocess.run(
                [str(find_binary()), "tts", text, "-o", str(wav), "--sample-rate", "16000"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
