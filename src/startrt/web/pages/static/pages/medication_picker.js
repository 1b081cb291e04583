// The concomitant-medication picker: choosing a listed drug fills its ATC code.
// The datalist lists the shipped drugs (protocol/data/concomitant_drugs.toml) with their codes.
(function () {
  "use strict";
  const list = document.getElementById("picker-drugs");
  if (!list) {
    return;
  }
  document.querySelectorAll('input[list="picker-drugs"]').forEach(function (name) {
    const code = name.form.querySelector('input[name="atc_code"]');
    name.addEventListener("input", function () {
      const picked = Array.from(list.options).find(function (option) {
        return option.value.toLowerCase() === name.value.trim().toLowerCase();
      });
      if (picked && code) {
        code.value = picked.dataset.atc;
      }
    });
  });
})();
