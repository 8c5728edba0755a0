"""Switching the camera mid-call: the other side sees the new camera without the call being
set up again. Chromium's fake camera is its only one, so the page is given a second (a white
canvas) by an init script."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Browser

from tests.conftest import BookPet
from tests.e2e.browser import Servers
from tests.e2e.test_pages import admitted_call, assert_remote_video_plays, named_booking

pytestmark = pytest.mark.slow

# A second camera: listed by enumerateDevices, and what getUserMedia gives when asked for it
# by id (a white picture; the fake camera shows a white bar on grey).
SECOND_CAMERA = """
(() => {
  const devices = navigator.mediaDevices;
  const enumerate = devices.enumerateDevices.bind(devices);
  const getUserMedia = devices.getUserMedia.bind(devices);
  const second = {
    deviceId: "second-camera", groupId: "second", kind: "videoinput", label: "Second camera",
  };
  devices.enumerateDevices = async () => [
    ...(await enumerate()), { ...second, toJSON: () => second },
  ];
  devices.getUserMedia = async (constraints) => {
    if (constraints?.video?.deviceId?.exact !== "second-camera") return getUserMedia(constraints);
    const canvas = Object.assign(document.createElement("canvas"), { width: 320, height: 240 });
    const context = canvas.getContext("2d");
    const paint = () => { context.fillStyle = "#fff"; context.fillRect(0, 0, 320, 240); };
    paint();
    setInterval(paint, 50);
    return canvas.captureStream(15);
  };
})();
"""

# The mean brightness (0-255) of the remote video's current frame.
REMOTE_BRIGHTNESS = """
() => {
  const video = document.querySelector("video[aria-label='Remote video']");
  const canvas = Object.assign(document.createElement("canvas"), { width: 64, height: 48 });
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0, 64, 48);
  const { data } = context.getImageData(0, 0, 64, 48);
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) {
    sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
  }
  return sum / (data.length / 4);
}
"""


async def test_switching_the_camera_mid_call_reaches_the_other_side(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked, SECOND_CAMERA)
    await assert_remote_video_plays(vet)
    assert await vet.evaluate(REMOTE_BRIGHTNESS) < 160  # grey with a white bar
    connections = await owner.evaluate("window.__peerConnections.length")

    await owner.get_by_label("Camera", exact=True).select_option(label="Second camera")
    brighter_than = f"(level) => ({REMOTE_BRIGHTNESS})() > level"
    await vet.wait_for_function(brighter_than, arg=200, timeout=20_000)
    # The track was replaced on the connection there was: no new connection, no error shown.
    assert await owner.evaluate("window.__peerConnections.length") == connections
    assert not await owner.get_by_role("alert").is_visible()
    await assert_remote_video_plays(vet)
