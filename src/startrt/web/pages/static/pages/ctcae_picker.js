// The CTCAE v5.0 term picker of the adverse-event forms (pages/adverse_event_fields.html).
// Choosing a System Organ Class narrows the terms the term box offers; a term chosen from the
// list fetches its grades (pages:ctcae_term) and the grade choices are rebuilt with the table's
// descriptions, the "Other, specify" name shown only for such terms. Without this script the
// form works the same through its "Show the grades of this term" button; the server checks
// every value again either way.
"use strict";

(function () {
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function setUp(picker) {
    const form = picker.closest("form");
    const soc = picker.querySelector("select[name$='soc']");
    const term = picker.querySelector("input[list='ctcae-terms']");
    const list = picker.querySelector("datalist");
    const other = picker.querySelector(".ctcae-other-specify");
    const info = picker.querySelector(".ctcae-term-info");
    const grades = picker.querySelector(".ctcae-grades");
    const choices = grades.querySelector("[id$='ctcae_grade']");
    const name = grades.querySelector("input[type=radio]").name;
    const url = picker.dataset.termUrl;
    let shown = null; // the term whose grades are shown
    const all = Array.from(list.options, (o) => ({ term: o.value, soc: o.dataset.soc }));

    // the script shows the grades itself; without the button, Enter in a field reports
    picker.querySelector(".ctcae-show-grades").remove();

    function fillList() {
      clear(list);
      for (const entry of all) {
        if (soc.value && entry.soc !== soc.value) continue;
        const option = document.createElement("option");
        option.value = entry.term;
        option.dataset.soc = entry.soc;
        list.appendChild(option);
      }
    }

    function paragraph(text, muted) {
      const p = document.createElement("p");
      if (muted) p.className = "muted";
      p.textContent = text;
      return p;
    }

    function show(entry) {
      shown = entry.term;
      const checked = form.querySelector("input[name='" + name + "']:checked");
      const keep = checked ? Number(checked.value) : null;
      clear(choices);
      entry.grades.forEach((g, i) => {
        const div = document.createElement("div");
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = "radio";
        input.name = name;
        input.value = String(g.grade);
        input.id = choices.id + "_" + i;
        input.checked = g.grade === keep;
        label.htmlFor = input.id;
        label.appendChild(input);
        label.appendChild(document.createTextNode(" " + g.grade + ": " + g.description));
        div.appendChild(label);
        choices.appendChild(div);
      });
      clear(info);
      const head = document.createElement("p");
      const strong = document.createElement("strong");
      strong.textContent = entry.term;
      head.appendChild(strong);
      head.appendChild(document.createTextNode(" · " + entry.soc + " · MedDRA " + entry.meddra_code));
      info.appendChild(head);
      if (entry.definition) info.appendChild(paragraph(entry.definition, true));
      if (entry.navigational_note) info.appendChild(paragraph(entry.navigational_note, true));
      other.hidden = !entry.other_specify;
      if (soc.value !== entry.soc) {
        soc.value = entry.soc;
        fillList();
      }
    }

    function lookUp() {
      const value = term.value;
      if (value === shown) return;
      if (!all.some((entry) => entry.term === value)) return;
      fetch(url + "?term=" + encodeURIComponent(value), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then((response) => (response.ok ? response.json() : null))
        .then((entry) => {
          if (entry && term.value === entry.term) show(entry);
        });
    }

    soc.addEventListener("change", fillList);
    term.addEventListener("change", lookUp);
    term.addEventListener("input", lookUp);
    if (term.value === "" && other.querySelector("input").value === "") other.hidden = true;
    lookUp();
  }

  document.querySelectorAll(".ctcae-picker").forEach(setUp);
})();
