"""A real HTTP server on 127.0.0.1 that serves checkpoints at the URL paths of the Hugging
Face hub (`/<repo>/resolve/main/<file>`, with the hub's ETag and commit headers) and of GitHub
releases (`/<owner>/<repo>/releases/download/<tag>/<file>`), and can misbehave the ways a
network does: a connection dropped mid-file, a truncated file, an HTML error page."""
import hashlib
import http.server
import threading


class WeightsServer:
    """`files[path] = (bytes, mode)`, mode "ok", "drop", "truncated" or "html"; `requests`
    lists the paths asked for. `url` is the base to point HF_ENDPOINT and
    GHOSTNET_TF_RELEASES_URL at."""

    def __init__(self):
        self.files, self.requests = {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body):
                server.requests.append((self.command, self.path))
                if self.path not in server.files:
                    self.send_error(404)
                    return
                data, mode = server.files[self.path]
                if mode == "html":
                    data = b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>"
                etag = hashlib.sha256(server.files[self.path][0]).hexdigest()
                sent = data[:len(data) // 2] if mode in ("drop", "truncated") else data
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if mode == "html"
                                 else "application/octet-stream")
                self.send_header("Content-Length", str(len(sent if mode != "drop" else data)))
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()
                if body:
                    self.wfile.write(sent)
                    if mode == "drop":
                        self.wfile.flush()
                        self.close_connection = True

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def serve_hub(self, hub_id, data, mode="ok", filename="model.safetensors"):
        self.files[f"/{hub_id}/resolve/main/{filename}"] = (data, mode)

    def serve_release(self, release, data, mode="ok"):
        self.files[f"/{release}"] = (data, mode)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
