// The secretariat's materials page: upload, link and remove through the REST API.
(() => {
  const root = document.getElementById("materials");
  const base = root.dataset.base;
  const headers = { "X-CSRF-Token": root.dataset.csrf };
  const status = document.getElementById("status");

  async function send(method, path, body, json) {
    const init = { method, headers: { ...headers }, body };
    if (json) init.headers["Content-Type"] = "application/json";
    const response = await fetch(path, init);
    if (response.ok) {
      location.reload();
      return;
    }
    const problem = await response.json().catch(() => ({ message: response.statusText }));
    status.textContent = problem.message;
  }

  document.getElementById("upload").addEventListener("submit", (event) => {
    event.preventDefault();
    send("POST", base, new FormData(event.target), false);
  });
  document.getElementById("link").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    send("POST", `${base}/links`,
      JSON.stringify({ url: form.get("url"), title: form.get("title") }), true);
  });
  for (const button of root.querySelectorAll("button.remove")) {
    button.addEventListener("click", () => send("DELETE", `${base}/${button.dataset.id}`));
  }
})();
