// The mlms-keras speech page: pick a voice, language and speaker, stream the audio from /api/tts (raw 16-bit PCM)
// into the Web Audio API so playback starts with the first chunk, then offer the whole result as a WAV file in
// the audio element and the download link, and draw its spectrogram (our own FFT: no network beyond the server).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { voices: [], audioContext: null, controller: null, sources: [], objectUrl: null };
// What the last request did, for people and for the browser test: times in ms since the Play press.
window.mlmsLast = null;

function setStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

function currentVoice() {
  return state.voices.find((voice) => voice.name === $("voice").value);
}

function fillLanguages() {
  const voice = currentVoice();
  $("lang").replaceChildren(...voice.languages.map((lang) => option(lang.code, `${lang.name} (${lang.code})`)));
  fillSpeakers();
}

function fillSpeakers() {
  const voice = currentVoice();
  const lang = voice.languages.find((entry) => entry.code === $("lang").value);
  const speakers = voice.speakers.map((speaker) => {
    const details = [speaker.language, speaker.gender].filter(Boolean).join(", ");
    return option(speaker.name, details ? `${speaker.name} (${details})` : speaker.name);
  });
  $("speaker").replaceChildren(option("", `Default: ${lang.default_speaker}`), ...speakers);
}

async function loadVoices() {
  try {
    const response = await fetch("/api/voices");
    if (!response.ok) throw new Error(`GET /api/voices answered ${response.status}`);
    const body = await response.json();
    state.voices = body.voices;
    $("text").maxLength = body.max_text_characters;
    $("max-chars").textContent = body.max_text_characters;
    $("voice").replaceChildren(...state.voices.map((voice) => option(voice.name, voice.name)));
    $("voice").value = body.default_voice;
    fillLanguages();
    $("play").disabled = false;
    setStatus("Ready. Type a text, pick a language and a speaker, and press Play.");
  } catch (error) {
    setStatus(`Could not load the voices: ${error.message}`, true);
  }
}

function stopPlayback() {
  if (state.controller) state.controller.abort();
  for (const source of state.sources) {
    try { source.stop(); } catch (error) { /* already stopped */ }
  }
  state.sources = [];
}

// Little-endian 16-bit PCM bytes -> floats in [-1, 1]; an odd trailing byte waits for the next chunk.
function decodePcm(bytes, carry) {
  let data = bytes;
  if (carry.length) {
    data = new Uint8Array(carry.length + bytes.length);
    data.set(carry);
    data.set(bytes, carry.length);
  }
  const count = data.length >> 1;
  const view = new DataView(data.buffer, data.byteOffset, count * 2);
  const samples = new Float32Array(count);
  for (let i = 0; i < count; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
  return { samples, carry: data.slice(count * 2) };
}

function wavBlob(chunks, total, sampleRate) {
  const buffer = new ArrayBuffer(44 + 2 * total);
  const view = new DataView(buffer);
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * total, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true); view.setUint32(28, 2 * sampleRate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * total, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, offset += 2) {
      view.setInt16(offset, Math.max(-32768, Math.min(32767, Math.round(chunk[i] * 32768))), true);
    }
  }
  return new Blob([buffer], { type: "audio/wav" });
}

// In-place iterative radix-2 FFT of (re, im), length a power of two.
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const step = (-2 * Math.PI) / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < size / 2; k++) {
        const wr = Math.cos(step * k), wi = Math.sin(step * k);
        const a = start + k, b = a + size / 2;
        const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr; im[b] = im[a] - ti;
        re[a] += tr; im[a] += ti;
      }
    }
  }
}

// Dark blue -> purple -> orange -> yellow, for 0..1.
function colour(value) {
  const stops = [[0, 0, 20], [80, 20, 120], [200, 60, 80], [250, 160, 30], [255, 250, 180]];
  const position = Math.max(0, Math.min(0.9999, value)) * (stops.length - 1);
  const index = Math.floor(position), t = position - index;
  return stops[index].map((c, channel) => Math.round(c + t * (stops[index + 1][channel] - c)));
}

function drawSpectrogram(samples, sampleRate) {
  const canvas = $("spectrogram");
  const context = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, size = 512, bins = size / 2;
  const hop = Math.max(1, Math.floor((samples.length - size) / width));
  const hann = Float32Array.from({ length: size }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / size));
  const columns = [];
  let peak = -Infinity;
  for (let x = 0; x < width; x++) {
    const start = x * hop;
    const re = new Float32Array(size), im = new Float32Array(size);
    for (let i = 0; i < size && start + i < samples.length; i++) re[i] = samples[start + i] * hann[i];
    fft(re, im);
    const column = new Float32Array(bins);
    for (let k = 0; k < bins; k++) {
      column[k] = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-10);
      peak = Math.max(peak, column[k]);
    }
    columns.push(column);
  }
  const image = context.createImageData(width, height);
  const range = 80; // dB shown below the peak
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const bin = Math.min(bins - 1, Math.floor(((height - 1 - y) / height) * bins)); // low frequencies at the bottom
      const [r, g, b] = colour((columns[x][bin] - peak + range) / range);
      const offset = 4 * (y * width + x);
      image.data[offset] = r; image.data[offset + 1] = g; image.data[offset + 2] = b; image.data[offset + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  // Frequency ticks every 2 kHz along the left edge (the browser test reads pixels right of x = 60 only).
  context.fillStyle = "rgba(255, 255, 255, 0.85)";
  context.font = "12px sans-serif";
  for (let khz = 0; khz < sampleRate / 2000; khz += 2) {
    const y = height - 1 - Math.round((khz * 2000 / sampleRate) * height);
    context.fillRect(0, y, 6, 1);
    context.fillText(`${khz} kHz`, 9, Math.max(12, Math.min(height - 3, y + 4)));
  }
  const seconds = (samples.length / sampleRate).toFixed(2), top = (sampleRate / 2000).toFixed(1);
  const description = `Spectrogram: ${seconds} s of audio, 0 to ${top} kHz from bottom to top, ${range} dB range.`;
  canvas.setAttribute("aria-label", description);
  canvas.dataset.ready = "true";
  $("spectrogram-caption").textContent = description;
}

async function speak(event) {
  event.preventDefault();
  stopPlayback();
  const begin = performance.now();
  const since = () => Math.round(performance.now() - begin);
  const params = new URLSearchParams({
    text: $("text").value, voice: $("voice").value, lang: $("lang").value, format: "pcm", stream: "true",
  });
  if ($("speaker").value) params.set("speaker", $("speaker").value);
  const last = { firstChunkMs: null, playbackScheduledMs: null, doneMs: null, chunks: 0, samples: 0, underruns: 0 };
  window.mlmsLast = last;
  state.controller = new AbortController();
  $("play").disabled = true;
  $("download").hidden = true;
  setStatus("Synthesising…");
  try {
    if (!state.audioContext) state.audioContext = new AudioContext();
    const audioContext = state.audioContext;
    await audioContext.resume();
    const response = await fetch(`/api/tts?${params}`, { signal: state.controller.signal });
    if (!response.ok) {
      const body = await response.json().catch(() => ({ error: response.statusText }));
      const valid = Object.entries(body).filter(([key]) => key.startsWith("valid_"))
        .map(([key, values]) => `${key.slice(6)}: ${values.join(", ")}`).join("; ");
      throw new Error(`${response.status}: ${body.error}${valid ? ` (${valid})` : ""}`);
    }
    const sampleRate = Number(response.headers.get("X-Sample-Rate"));
    last.sampleRate = sampleRate;
    const reader = response.body.getReader();
    const chunks = [];
    let carry = new Uint8Array(0), playAt = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const decoded = decodePcm(value, carry);
      carry = decoded.carry;
      if (!decoded.samples.length) continue;
      if (last.firstChunkMs === null) {
        last.firstChunkMs = since();
        setStatus("Playing while the rest is synthesised…");
      }
      chunks.push(decoded.samples);
      last.chunks += 1;
      last.samples += decoded.samples.length;
      const buffer = audioContext.createBuffer(1, decoded.samples.length, sampleRate);
      buffer.copyToChannel(decoded.samples, 0);
      const source = audioContext.createBufferSource();
      source.buffer = buffer;
      source.connect(audioContext.destination);
      if (playAt < audioContext.currentTime) {
        if (playAt > 0) last.underruns += 1;
        playAt = audioContext.currentTime + 0.1; // a little lead, so that the next chunk can arrive in time
      }
      source.start(playAt);
      playAt += buffer.duration;
      state.sources.push(source);
      if (last.playbackScheduledMs === null) last.playbackScheduledMs = since();
    }
    last.doneMs = since();
    const all = new Float32Array(last.samples);
    chunks.reduce((offset, chunk) => (all.set(chunk, offset), offset + chunk.length), 0);
    if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
    state.objectUrl = URL.createObjectURL(wavBlob(chunks, last.samples, sampleRate));
    $("audio").src = state.objectUrl;
    const file = `mlms-${$("voice").value}-${$("lang").value}-${response.headers.get("X-Speaker")}.wav`;
    $("download").href = state.objectUrl;
    $("download").download = file;
    $("download").hidden = false;
    drawSpectrogram(all, sampleRate);
    setStatus(`Done: ${(last.samples / sampleRate).toFixed(2)} s of audio by ${response.headers.get("X-Speaker")}` +
      `; first audio after ${last.firstChunkMs} ms, all of it after ${last.doneMs} ms.`);
  } catch (error) {
    if (error.name !== "AbortError") setStatus(`Synthesis failed: ${error.message}`, true);
    last.error = String(error.message || error);
  } finally {
    $("play").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("voice").addEventListener("change", fillLanguages);
  $("lang").addEventListener("change", fillSpeakers);
  $("tts-form").addEventListener("submit", speak);
  loadVoices();
});
