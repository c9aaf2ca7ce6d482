/* formkit.js: show and hide conditional questions as they are answered.
 *
 * Progressive enhancement only: without this script the server shows new questions
 * after a submission. Same rules as app/formkit/conditions.py: a condition holds only
 * when the field it names is visible and answered. Keeps the hidden "formkit_shown"
 * input listing the questions on screen, so the server knows what was seen.
 */
(function () {
  "use strict";

  var INTEGER = /^[+-]?\d{1,15}$/;
  var DECIMAL = /^[+-]?\d{1,15}([.,]\d{1,10})?$/;

  function answers(form, name) {
    var found = [];
    var controls = form.querySelectorAll('[name="' + name + '"]');
    Array.prototype.forEach.call(controls, function (el) {
      if (el.type === "radio" || el.type === "checkbox") {
        if (el.checked) { found.push(el.value); }
      } else if (el.tagName === "SELECT") {
        Array.prototype.forEach.call(el.selectedOptions, function (o) { found.push(o.value); });
      } else {
        found.push(el.value.trim());
      }
    });
    return found.filter(function (value) { return value !== ""; });
  }

  function toNumber(text, kind) {
    text = text.replace(/\s/g, "");
    var pattern = kind === "integer" ? INTEGER : DECIMAL;
    return pattern.test(text) ? Number(text.replace(",", ".")) : null;
  }

  function same(answer, expected, kind) {
    if (!kind) { return answer === expected; }
    var number = toNumber(answer, kind);
    return number !== null && number === Number(expected);
  }

  function holds(rule, given) {
    if (!given.length) { return false; }
    if (rule.op === "contains") {
      return given.some(function (a) { return same(a, rule.values[0], rule.number); });
    }
    if (rule.number && toNumber(given[0], rule.number) === null) { return false; }
    var matched = rule.values.some(function (v) { return same(given[0], v, rule.number); });
    return rule.op === "not_equals" ? !matched : matched;
  }

  function update(form, shownInput) {
    var visible = {};
    var shown = [];
    Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (wrapper) {
      var name = wrapper.getAttribute("data-field");
      var raw = wrapper.getAttribute("data-show-if");
      var show = true;
      if (raw) {
        var rule = JSON.parse(raw);
        show = visible[rule.field] === true && holds(rule, answers(form, rule.field));
      }
      wrapper.hidden = !show;
      visible[name] = show;
      if (show) { shown.push(name); }
    });
    shownInput.value = shown.join(",");
  }

  function enhance(shownInput) {
    var form = shownInput.form;
    if (!form || !form.querySelector("[data-show-if]")) { return; }
    var refresh = function () { update(form, shownInput); };
    form.addEventListener("change", refresh);
    form.addEventListener("input", refresh);
    refresh();
  }

  function start() {
    Array.prototype.forEach.call(
      document.querySelectorAll('input[name="formkit_shown"]'), enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
