// The review queue: flagged results nobody has reviewed, each with its picture and two buttons. It uses the
// public API only (GET /results, GET /results/{id}, GET /panel, PUT and DELETE /results/{id}/review,
// GET /results/summary, and GET /model and its report's listing for a link to the report), with the key
// typed into this tab.
// Client text (refs, sources, problem details) is only ever set as textContent, never parsed as HTML.
"use strict";

const PAGE_SIZE = 20;
// The path prefix a reverse proxy serves the API under (VAE_ROOT_PATH), filled in by the service.
const ROOT = document.querySelector('meta[name="api-root"]').content;
const $ = (id) => document.getElementById(id);
// `last`: the tab's last review, which Undo takes back: the result's id, ref, its review before, and
// the ETag the review gave it.
// `waiting`: how many flags of the line nobody has reviewed (the summary's unreviewed_flags), or null.
const session = {key: sessionStorage.getItem("vae-api-key") || "", reviewed: 0, ref: null, last: null,
                 waiting: null};
$("reviewer").value = localStorage.getItem("vae-reviewer") || "";
$("source").value = new URLSearchParams(location.search).get("source") || "";

class NeedsKey extends Error {}
// A review sent with If-Match that the service refused (412): the result's review changed since it was read.
class Changed extends Error {}

async function api(path, options = {}) {
  const headers = {...(options.headers || {})};
  if (session.key) headers.Authorization = "Bearer " + session.key;
  const response = await fetch(path, {...options, headers});
  if (response.status === 401) {
    $("key-form").hidden = false;
    throw new NeedsKey(session.key ? "that API key is not valid" : "this service needs an API key");
  }
  if (response.status === 412) {
    throw new Changed("Its review changed while this one was on its way, so nothing was written: try again.");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (ignored) { /* not a problem document */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function counted() {
  const waiting = session.waiting === null ? null
    : session.waiting === 1 ? "1 flag to review" : `${session.waiting} flags to review`;
  const reviewed = session.reviewed ? `${session.reviewed} reviewed in this tab` : null;
  $("count").textContent = [waiting, reviewed].filter(Boolean).join(" · ");
}

// All the line's flags that wait, not only the page shown: the summary counts them from an index.
async function countWaiting() {
  const source = $("source").value.trim();
  try {
    const summary = await (await api(`${ROOT}/results/summary?` + new URLSearchParams(source ? {source} : {})))
      .json();
    session.waiting = summary.unreviewed_flags;
  } catch (error) {
    session.waiting = null;  // the queue itself still works
  }
  counted();
}

function element(tag, properties = {}, children = []) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function describe(result) {
  const when = new Date(result.created_at).toLocaleString();
  const where = [result.source ?? "no source", result.ref ? `ref ${result.ref}` : "no ref"];
  const verdict = result.is_anomaly ? "flagged: score" : "passed: score";
  const relation = result.is_anomaly ? "above" : "at or below";
  const facts = `${where.join(" · ")} · ${when} · ${verdict} ${result.score.toFixed(2)} ${relation} threshold ` +
                `${result.threshold.toFixed(2)} · p-value ${result.p_value.toPrecision(2)} · ` +
                `model ${result.model.name} v${result.model.version}`;
  const reviewed = result.review && `reviewed ${result.review.verdict}` +
                   (result.review.reviewer ? ` by ${result.review.reviewer}` : "") +
                   ` on ${new Date(result.review.reviewed_at).toLocaleString()}`;
  return reviewed ? `${facts} · ${reviewed}` : facts;
}

function card(result) {
  const picture = element("img", {alt: "input, reconstruction and difference of result " + result.id});
  api(result.panel_url).then((response) => response.blob())
    .then((blob) => { picture.src = URL.createObjectURL(blob); })
    .catch((error) => { picture.alt = "picture unavailable: " + error.message; });
  const note = element("input", {placeholder: "note (optional), e.g. glare on the lens", maxLength: 1000});
  // A passed part can be a missed defect, found later down the line (looked up by its ref).
  const [normalLabel, defectLabel] = result.is_anomaly ? ["Normal: false alarm", "Defect: confirmed"]
                                                       : ["Normal: confirmed", "Defect: missed"];
  const normal = element("button", {type: "button", className: "normal", textContent: normalLabel});
  const defect = element("button", {type: "button", className: "defect", textContent: defectLabel});
  const article = element("article", {className: "card"}, [
    picture, element("p", {className: "facts", textContent: describe(result)}),
    element("div", {className: "actions"}, [normal, defect, note])]);
  article.dataset.id = result.id;
  article.result = result;
  article.review = (verdict) => review(article, verdict, note.value.trim());
  normal.addEventListener("click", () => article.review("normal"));
  defect.addEventListener("click", () => article.review("anomalous"));
  return article;
}

async function review(article, verdict, note) {
  if (article.dataset.busy) return;  // a second click or key press while the first is on its way
  article.dataset.busy = "yes";
  const body = {verdict};
  if (note) body.note = note;
  const reviewer = $("reviewer").value.trim();
  localStorage.setItem("vae-reviewer", reviewer);
  if (reviewer) body.reviewer = reviewer;
  article.querySelectorAll("button").forEach((button) => { button.disabled = true; });
  try {
    // Operators who share a queue see the same flags: one may review a flag while another still has it on
    // screen, and a review replaces the result's review, so the second would silently overrule the first. So the
    // review is sent on condition (If-Match: the result's ETag as the card shows it) that its review is still the
    // one the card shows.
    const response = await api(`${ROOT}/results/${article.dataset.id}/review`, {
      method: "PUT", headers: {"Content-Type": "application/json", "If-Match": article.result.etag},
      body: JSON.stringify(body)});
    const reviewed = await response.json();
    // In the queue a reviewed flag leaves; a looked-up part stays, showing its review.
    if (session.ref) article.replaceWith(card(reviewed)); else article.remove();
    session.reviewed += 1;
    counted();
    offerUndo({id: reviewed.id, ref: reviewed.ref, verdict, before: article.result.review, etag: reviewed.etag});
    say(`Reviewed as ${verdict}.`);
    // The queue read again when it is empty counts what waits as well.
    if (!session.ref && !$("queue").children.length) await load(); else countWaiting();
  } catch (error) {
    let problem = error;
    if (error instanceof Changed) {  // reviewed by someone else since the card was shown
      try {
        if (await showWhatChanged(article)) return;
      } catch (again) {
        problem = again;
      }
    }
    delete article.dataset.busy;
    article.querySelectorAll("button").forEach((button) => { button.disabled = false; });
    say(problem.message, true);
  }
}

// The card's result was reviewed (or its review withdrawn) since it was shown: the card leaves the queue, or
// shows the review now given, and the page says so: true. If the review is in fact the one shown, the card
// takes the result as it is now (its new ETag), for the next try: false.
async function showWhatChanged(article) {
  const current = await (await api(`${ROOT}/results/${article.dataset.id}`)).json();
  if (sameReview(current.review, article.result.review)) {
    article.result = current;
    return false;
  }
  if (session.ref) article.replaceWith(card(current)); else article.remove();
  const what = current.ref ? `ref ${current.ref}` : `result ${current.id.slice(0, 8)}`;
  const now = current.review
    ? `was reviewed ${current.review.verdict}${current.review.reviewer ? " by " + current.review.reviewer : ""}`
    : "had its review withdrawn";
  countWaiting();
  if (!session.ref && !$("queue").children.length) await load();
  say(`${what} ${now} meanwhile, in another tab or by someone else: left as it is.`, true);
  return true;
}

function sameReview(one, other) {
  return (one && one.reviewed_at) === (other && other.reviewed_at);  // a review's time tells it from others
}

// A review sent by a slip of the finger (N for D) would otherwise be out of sight, and feed a recalibration
// (`recalibrate --results` counts a flag reviewed as normal among the normal images). Undo puts the
// result's review back as it was before the tab's last review: withdrawn, or the earlier review sent again.
// The audit trail (GET /results/{id}/reviews) keeps all of it.
function offerUndo(last) {
  session.last = last;
  const what = last.ref ? `ref ${last.ref}` : `result ${last.id.slice(0, 8)}`;
  $("undo").textContent = `Undo: ${what} reviewed ${last.verdict} (U)`;
  $("undo").hidden = false;
}

async function undo() {
  const last = session.last;
  if (!last || $("undo").disabled) return;
  $("undo").disabled = true;
  // Only over the tab's own review (If-Match: its ETag): if someone reviewed the result again since, theirs
  // stands.
  const path = `${ROOT}/results/${last.id}/review`;
  const headers = {"If-Match": last.etag};
  try {
    if (last.before) {
      const body = {verdict: last.before.verdict};
      if (last.before.note) body.note = last.before.note;
      if (last.before.reviewer) body.reviewer = last.before.reviewer;
      await api(path, {method: "PUT", headers: {...headers, "Content-Type": "application/json"},
                       body: JSON.stringify(body)});
    } else {
      await api(path, {method: "DELETE", headers});
    }
    session.last = null;
    $("undo").hidden = true;
    session.reviewed -= 1;
    counted();
    await (session.ref ? lookUp(session.ref) : load());  // the flag is back in the queue, in its place
    say(last.before ? `Undone: back to its earlier review, ${last.before.verdict}.` : "Undone: not reviewed.");
  } catch (error) {
    if (error instanceof Changed) {
      session.last = null;
      $("undo").hidden = true;
      await (session.ref ? lookUp(session.ref) : load());
      say("Not undone: it was reviewed again since, in another tab or by someone else.", true);
      return;
    }
    say(error.message, true);
  } finally {
    $("undo").disabled = false;
  }
}

// The served version's evaluation report, for whoever judges its flags: a link that a browser opens also
// where API keys are set (browser_link, made with the key), fetched again with the queue, as it expires.
async function linkReport() {
  const link = $("report-link");
  try {
    const model = await (await api(`${ROOT}/model`)).json();
    const report = model.report_url && await (await api(model.report_url)).json();
    link.hidden = !(report && report.browser_link);
    if (link.hidden) return;
    link.href = report.browser_link;
    link.textContent = `Evaluation report of ${model.name} version ${model.version}`;
  } catch (error) {
    link.hidden = true;  // no model served yet: the queue still works
  }
}

async function show(query, empty) {
  say("Loading…");
  try {
    const page = await (await api(`${ROOT}/results?` + query)).json();
    $("queue").replaceChildren(...page.items.map(card));
    say(page.items.length ? "" : empty);
    // once the key is known to work, so that they add no refusal of their own
    linkReport();
    countWaiting();
  } catch (error) {
    $("queue").replaceChildren();
    say(error.message, true);
  }
}

async function lookUp(ref) {
  session.ref = ref;
  $("heading").textContent = `Results for ref ${ref}`;
  await show(new URLSearchParams({ref, limit: String(PAGE_SIZE)}), `No result has the ref ${ref}.`);
}

async function load() {
  session.ref = null;
  $("heading").textContent = "Flags to review";
  const query = new URLSearchParams({anomalous: "true", review: "none", limit: String(PAGE_SIZE)});
  const source = $("source").value.trim();
  if (source) query.set("source", source);
  await show(query, "Nothing to review.");
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("vae-reviewer", $("reviewer").value.trim());
  load();
});
$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  const ref = $("ref").value.trim();
  if (ref) lookUp(ref);
});
$("undo").addEventListener("click", undo);
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  session.key = $("key").value.trim();
  sessionStorage.setItem("vae-api-key", session.key);
  $("key").value = "";
  $("key-form").hidden = true;
  session.ref ? lookUp(session.ref) : load();
});
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input") || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "u" || event.key === "U") undo();
  const first = $("queue").firstElementChild;
  if (!first) return;
  if (event.key === "n" || event.key === "N") first.review("normal");
  if (event.key === "d" || event.key === "D") first.review("anomalous");
});
load();
