// The /guest page: meeting number, passcode and name → a guest join link (POST
// /api/v1/guest-joins), then on to the conference page, which puts the guest in the lobby.
const $ = (id) => document.getElementById(id);
const text = JSON.parse($("guest-texts").textContent);
const form = $("guest-form");

function problem(response, body) {
  const code = (body && body.error) || "";
  if (code === "guests_not_allowed") return text.guest_no_guests;
  if (response.status === 403 || response.status === 404) return text.guest_wrong;
  if (response.status === 409) return text[`refused_${code}`] || (body && body.message) || text.guest_failed;
  if (response.status === 429) {
    const seconds = response.headers.get("Retry-After") || "60";
    return text.guest_too_many.replace("{seconds}", seconds);
  }
  if (response.status === 422 || response.status === 400) return text.guest_invalid;
  return (body && body.message) || text.guest_failed;
}

form.onsubmit = async (event) => {
  event.preventDefault();
  $("guest-error").textContent = "";
  if (!form.checkValidity()) {
    $("guest-error").textContent = text.guest_invalid;
    form.querySelector(":invalid").focus();
    return;
  }
  $("guest-join").disabled = true;
  try {
    const response = await fetch(form.dataset.api, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        meeting: Number($("meeting").value),
        passcode: $("passcode").value,
        name: $("name").value.trim(),
      }),
    });
    const body = await response.json().catch(() => null);
    if (response.status === 201 && body && body.url) {
      location.assign(body.url);
      return;
    }
    $("guest-error").textContent = problem(response, body);
  } catch (error) {
    $("guest-error").textContent = text.guest_failed;
  }
  $("guest-join").disabled = false;
};
