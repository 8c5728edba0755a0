from bench.chat.cli import chat

chat()
