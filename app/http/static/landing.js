// The landing page's client: upload with progress, search, download and
// the contact form, all through the JSON API with the key the user typed.
// No build step and no inline code, so the page's CSP can forbid inline
// scripts. The key lives in sessionStorage only: per tab, gone when the tab
// closes, never sent anywhere but in the X-API-Key header of our requests.
"use strict";

(function () {
  const KEY_ITEM = "apiKey";
  const PAGE_SIZE = 10;
  const $ = (id) => document.getElementById(id);

  // --- the API key ---------------------------------------------------------
  const keyInput = $("key");
  keyInput.value = sessionStorage.getItem(KEY_ITEM) || "";
  keyInput.addEventListener("input", () => {
    const k = keyInput.value.trim();
    if (k) sessionStorage.setItem(KEY_ITEM, k);
    else sessionStorage.removeItem(KEY_ITEM);
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_ITEM);
    keyInput.value = "";
    keyInput.focus();
  });

  // apiKey returns the key, or shows in out why there is none and returns "".
  function apiKey(out) {
    const k = keyInput.value.trim();
    if (!k) {
      showError(out, "Enter your API key first (in the API key box at the top).");
      keyInput.focus();
    }
    return k;
  }

  // --- showing results and errors ------------------------------------------
  function showOK(el, text) { el.className = "result ok"; el.textContent = text; }
  function showError(el, text) { el.className = "result error"; el.textContent = text; }
  function showInfo(el, text) { el.className = "result"; el.textContent = text; }

  // apiError turns a failed response into what the user reads: the status,
  // the API's {"error"} and its per-field problems. A body that is not the
  // API's JSON (a proxy's error page, say) is shown as text, shortened.
  function apiError(status, statusText, text) {
    let msg = "Error " + status + (statusText ? " " + statusText : "");
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "string") {
        msg += ": " + body.error;
        if (body.fields) {
          for (const [field, problem] of Object.entries(body.fields)) msg += "\n  " + field + ": " + problem;
        }
        return msg;
      }
    } catch (_) { /* not JSON: fall through */ }
    const t = (text || "").trim();
    return t ? msg + ": " + (t.length > 300 ? t.slice(0, 300) + "…" : t) : msg;
  }

  // textStatusLabel says in words whether a document's text can be searched
  // (the API's text_status and text_reason). An answer without one (an
  // older server) says nothing rather than guess.
  function textStatusLabel(status, reason) {
    switch (status) {
      case "pending": return "pending (not extracted yet)";
      case "indexed": return "indexed";
      case "no_text": return "no text found" + (reason ? " (" + reason + ")" : "") + "; only its name and type are searchable";
      case "failed": return "extraction failed" + (reason ? " (" + reason + ")" : "") + "; only its name and type are searchable";
      case "unknown": return "unknown (stored before text states were recorded)";
      default: return status ? String(status) : "not reported";
    }
  }

  function formatSize(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  }

  // Document types seen in this tab (uploads, results) fill the type boxes'
  // suggestions: the API has no list of them, they are free-form.
  const knownTypes = new Set();
  function rememberType(t) {
    if (!t || knownTypes.has(t)) return;
    knownTypes.add(t);
    const o = document.createElement("option");
    o.value = t;
    $("doctypes").appendChild(o);
  }

  // --- download --------------------------------------------------------------
  // A plain link cannot carry the X-API-Key header, so a click fetches the
  // file with it and saves the bytes under the document's name.
  async function download(id, filename, out) {
    const key = apiKey(out);
    if (!key) return;
    try {
      const r = await fetch("documents/" + encodeURIComponent(id) + "/download", { headers: { "X-API-Key": key } });
      if (!r.ok) {
        showError(out, apiError(r.status, r.statusText, await r.text()));
        return;
      }
      const url = URL.createObjectURL(await r.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = filename;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      showError(out, "Could not download: " + err.message);
    }
  }

  function downloadLink(id, filename, out) {
    const a = document.createElement("a");
    a.href = "documents/" + encodeURIComponent(id) + "/download";
    a.textContent = filename;
    a.className = "download";
    a.dataset.id = id;
    a.addEventListener("click", (e) => { e.preventDefault(); download(id, filename, out); });
    return a;
  }

  // --- upload ------------------------------------------------------------------
  // XMLHttpRequest, not fetch: only it reports upload progress.
  const uploadForm = $("upload"), uploadOut = $("upload-result");
  const bar = $("upload-progress"), percent = $("upload-percent");
  const uploadButton = $("upload-button"), cancelButton = $("upload-cancel");
  let xhr = null;

  function setProgress(p) {
    bar.value = p;
    percent.textContent = Math.floor(p) + "%";
  }

  uploadForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = apiKey(uploadOut);
    if (!key) return;
    const type = $("doctype").value.trim(), file = $("file").files[0];
    if (!type) { showError(uploadOut, "Enter a document type, e.g. report or invoice."); $("doctype").focus(); return; }
    if (!$("doctype").checkValidity()) { showError(uploadOut, "A document type is letters, digits, _ - . only, at most 64."); $("doctype").focus(); return; }
    if (!file) { showError(uploadOut, "Choose a file to upload."); $("file").focus(); return; }

    // document_type first: the server streams the file part as it
    // arrives and must know the type by then.
    const body = new FormData();
    body.append("document_type", type);
    body.append("file", file, file.name);

    xhr = new XMLHttpRequest();
    xhr.open("POST", "documents/upload");
    xhr.setRequestHeader("X-API-Key", key);
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable && ev.total > 0) setProgress(100 * ev.loaded / ev.total);
    });
    xhr.upload.addEventListener("load", () => setProgress(100));
    xhr.addEventListener("load", () => {
      done();
      if (xhr.status === 201) {
        let d;
        try { d = JSON.parse(xhr.responseText); } catch (_) { showError(uploadOut, "Uploaded, but the answer was not JSON."); return; }
        rememberType(d.document_type);
        uploadOut.className = "result ok";
        uploadOut.textContent = "Uploaded #" + d.id + ": ";
        uploadOut.appendChild(downloadLink(d.id, d.filename, uploadOut));
        uploadOut.appendChild(document.createTextNode(
          " (" + d.document_type + ", " + formatSize(d.size) + "). Text: " + textStatusLabel(d.text_status, "") +
          " — searchable in a moment, once the text is indexed."));
        $("file").value = "";
      } else {
        // The bytes may all have gone out, but nothing was kept: a full
        // bar next to the refusal would say otherwise.
        bar.hidden = true;
        percent.textContent = "";
        showError(uploadOut, apiError(xhr.status, xhr.statusText, xhr.responseText));
      }
    });
    xhr.addEventListener("error", () => {
      done(); bar.hidden = true; percent.textContent = "";
      showError(uploadOut, "Upload failed: the connection was lost or refused.");
    });
    xhr.addEventListener("abort", () => { done(); bar.hidden = true; percent.textContent = ""; showInfo(uploadOut, "Upload cancelled."); });

    setProgress(0);
    bar.hidden = false;
    uploadButton.disabled = true;
    cancelButton.hidden = false;
    showInfo(uploadOut, "Uploading " + file.name + " (" + formatSize(file.size) + ")…");
    xhr.send(body);
  });

  function done() {
    uploadButton.disabled = false;
    cancelButton.hidden = true;
  }
  cancelButton.addEventListener("click", () => { if (xhr) xhr.abort(); });

  // --- search ------------------------------------------------------------------
  const searchForm = $("search"), searchOut = $("search-status"), list = $("search-results");
  let offset = 0;

  // snippetNodes turns a snippet into text nodes and <mark> elements. The
  // API's snippets are document text with <mark>…</mark> around matches and
  // no HTML escaping, so nothing of it is ever parsed as HTML.
  function snippetNodes(snippet) {
    const nodes = [];
    let marked = false;
    for (const piece of snippet.split(/(<\/?mark>)/)) {
      if (piece === "<mark>") { marked = true; continue; }
      if (piece === "</mark>") { marked = false; continue; }
      if (!piece) continue;
      if (marked) {
        const m = document.createElement("mark");
        m.textContent = piece;
        nodes.push(m);
      } else {
        nodes.push(document.createTextNode(piece));
      }
    }
    return nodes;
  }

  async function search() {
    const key = apiKey(searchOut);
    if (!key) return;
    const q = $("q").value.trim(), type = $("filter").value.trim();
    if (!q) { showError(searchOut, "Enter one or more words to search for."); $("q").focus(); return; }
    const params = new URLSearchParams({ q: q, limit: String(PAGE_SIZE), offset: String(offset) });
    if (type) params.set("document_type", type);
    $("search-button").disabled = true;
    showInfo(searchOut, "Searching…");
    try {
      const r = await fetch("documents/search?" + params, { headers: { "X-API-Key": key } });
      const text = await r.text();
      if (!r.ok) {
        list.replaceChildren();
        $("pager").hidden = true;
        showError(searchOut, apiError(r.status, r.statusText, text));
        return;
      }
      render(JSON.parse(text), type);
    } catch (err) {
      showError(searchOut, "Could not search: " + err.message);
    } finally {
      $("search-button").disabled = false;
    }
  }

  function render(res, type) {
    const items = res.results.map((d) => {
      rememberType(d.document_type);
      const li = document.createElement("li");
      const title = document.createElement("div");
      title.appendChild(downloadLink(d.id, d.filename, searchOut));
      const meta = document.createElement("div");
      meta.className = "meta";
      const badge = document.createElement("span");
      badge.className = "type";
      badge.textContent = d.document_type;
      meta.append(badge, formatSize(d.size) + " · uploaded " + new Date(d.created_at).toLocaleString() + " · #" + d.id);
      const text = document.createElement("span");
      text.className = "text-status " + (d.text_status === "indexed" ? "indexed" : "unindexed");
      text.dataset.status = d.text_status || "";
      text.textContent = " · text: " + textStatusLabel(d.text_status, d.text_reason);
      meta.append(text);
      const snip = document.createElement("div");
      snip.className = "snippet";
      snip.append(...snippetNodes(d.snippet || ""));
      li.append(title, meta, snip);
      return li;
    });
    list.start = offset + 1;
    list.replaceChildren(...items);
    const where = type ? " of type " + type : "";
    if (res.total === 0) {
      showInfo(searchOut, "No documents" + where + " match “" + res.query + "”.");
    } else {
      showInfo(searchOut, res.total + (res.total === 1 ? " document" + where + " matches" : " documents" + where + " match") + " “" + res.query + "”" +
        (res.total > items.length ? ", showing " + (offset + 1) + "–" + (offset + items.length) : "") +
        " (" + res.processing_time_ms + " ms). Click a name to download it.");
    }
    $("pager").hidden = res.total <= PAGE_SIZE;
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + items.length >= res.total;
  }

  searchForm.addEventListener("submit", (e) => { e.preventDefault(); offset = 0; search(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); search(); });
  $("next").addEventListener("click", () => { offset += PAGE_SIZE; search(); });

  // --- contact -----------------------------------------------------------------
  const contactForm = $("contact"), contactOut = $("contact-result");
  contactForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = apiKey(contactOut);
    if (!key) return;
    $("contact-button").disabled = true;
    try {
      const r = await fetch("contact", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": key },
        body: JSON.stringify({ name: $("name").value, email: $("email").value, message: $("message").value }),
      });
      const text = await r.text();
      if (!r.ok) { showError(contactOut, apiError(r.status, r.statusText, text)); return; }
      showOK(contactOut, "Thank you: message #" + JSON.parse(text).id + " received.");
      contactForm.reset();
    } catch (err) {
      showError(contactOut, "Could not send: " + err.message);
    } finally {
      $("contact-button").disabled = false;
    }
  });
})();
