/* Pathways studio: the editor page (BPMN with bpmn-js, DMN with dmn-js).
 *
 * Reads its settings from <script type="application/json" id="studio-config">, loads the file's
 * XML from config.xml_url, and saves the exported XML to config.save_url (with the revision it
 * was loaded at, so a concurrent save is refused with 409) or checks it at config.validate_url.
 * Problems come back as a list naming the element (id and name); those of this file are
 * highlighted in the diagram (marker class "pw-error") and clicking one selects its element.
 */
(function () {
  'use strict';

  /** English defaults; the server sends the translated ones in config.strings. */
  var DEFAULTS = {
    status_loading: 'Loading the diagram…',
    status_loaded: 'Diagram loaded.',
    status_load_failed: 'The diagram could not be opened: {error}',
    status_laid_out: 'This file had no diagram: one was drawn for it. Save to keep it.',
    status_import_warnings: 'Warning: {count} part(s) of the file could not be read; saving leaves them out.',
    status_saving: 'Saving…',
    status_saved: 'Saved (revision {revision}). No problems.',
    status_saved_problems: 'Saved (revision {revision}). Problems to fix before publishing: {count}.',
    status_conflict: 'Not saved: someone else saved this file meanwhile (revision {revision}). Note your changes, then reload.',
    status_refused: 'Not saved: {error}',
    status_failed: 'Not saved: the server could not be reached ({error}). Try again.',
    status_checking: 'Checking…',
    status_check_ok: 'Checked: no problems found.',
    status_check_problems: 'Checked: problems found: {count}.',
    status_check_failed: 'The check failed: {error}',
    unsaved_warning: 'You have unsaved changes. Leave the page anyway?',
    no_problems: 'No problems found.',
    problem_select: 'Show {name} in the diagram',
    panel_select: 'Select an element in the diagram to edit its properties.',
    element_problems: 'Problems with this element',
    field_id: 'ID',
    field_name: 'Name',
    field_role: 'Role',
    field_form_key: 'Form',
    help_form_key: 'The form the caseworker fills in at this step (from forms/).',
    help_role_from_lane: 'Given by the lane the task is in: move the task to another lane to change it.',
    no_lane: 'No lane: put the task in a lane named after a role.',
    help_lane_role: 'The role that does the tasks in this lane.',
    field_allow_back: 'Allow going back from this step',
    help_allow_back: 'Untick for a step the caseworker must not go back from.',
    field_instructions: 'Instructions',
    help_instructions: 'Shown above the form.',
    field_operation: 'Operation',
    field_result_variable: 'Result variable',
    help_result_variable: 'The name the operation\'s result is stored under.',
    field_parameters: 'Parameters',
    param_id: 'Name',
    param_value: 'Value',
    help_parameter_value: 'Each value is an expression: text in quotes, e.g. \'cp_referral\', or a variable.',
    add_parameter: 'Add a parameter',
    remove_parameter: 'Remove',
    remove_parameter_named: 'Remove the parameter {name}',
    field_decision: 'Decision table',
    field_called_process: 'Called process',
    timer_heading: 'Timer',
    field_timer_type: 'Type',
    timer_duration: 'Duration',
    timer_date: 'Date',
    timer_cycle: 'Cycle',
    field_timer_expression: 'Expression',
    help_timer_timeDuration: 'An expression: a duration in quotes, e.g. "PT48H", or a variable, e.g. watch[\'reminder_in\'].',
    help_timer_timeDate: 'An expression: an ISO 8601 date and time in quotes, e.g. "2030-01-31T09:00:00Z".',
    help_timer_timeCycle: 'An expression: an ISO 8601 repeating interval in quotes, e.g. "R3/PT24H".',
    field_condition: 'Condition',
    help_condition: 'When this path is taken: an expression, e.g. age < 18 or \'GBV\' in services.',
    help_condition_default: 'The default flow is taken when no other condition holds; it has no condition.',
    field_default_flow: 'Default flow of the gateway',
    help_default_flow: 'Taken when no other flow\'s condition holds.',
    choose: '— choose —',
    unknown_option: '{value} (not available)',
    decision_view: 'Decision table: {name}'
  };

  var root = document.getElementById('studio-editor');
  var configNode = document.getElementById('studio-config');
  if (!root || !configNode) { return; }
  var config = JSON.parse(configNode.textContent);
  var strings = config.strings || {};

  function t(key, params, fallback) {
    var text = strings[key] || DEFAULTS[key] || fallback || key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split('{' + name + '}').join(String(params[name]));
    });
    return text;
  }

  var canvasNode = document.getElementById('studio-canvas');
  var saveButton = document.getElementById('studio-save');
  var checkButton = document.getElementById('studio-check');
  var statusNode = document.getElementById('studio-status');
  var dirtyNode = document.getElementById('studio-dirty');
  var problemList = document.getElementById('studio-problem-list');
  var problemCount = document.getElementById('studio-problem-count');
  var noProblems = document.getElementById('studio-no-problems');
  var problemsSection = document.getElementById('studio-problems');

  var state = {
    revision: config.revision,
    problems: config.problems || [],
    changes: 0,       // edits since the page loaded
    savedAt: 0,       // the value of ``changes`` at the last successful save
    busy: false,
    ready: false
  };

  function setStatus(message, kind) {
    statusNode.textContent = message;
    statusNode.className = 'studio-status' + (kind ? ' is-' + kind : '');
  }

  function isDirty() { return state.changes !== state.savedAt; }

  function refreshDirty() {
    dirtyNode.hidden = !isDirty();
    root.setAttribute('data-dirty', isDirty() ? 'true' : 'false');
  }

  function changed() {
    state.changes += 1;
    refreshDirty();
  }

  function setBusy(busy) {
    state.busy = busy;
    saveButton.disabled = busy || !state.ready;
    checkButton.disabled = busy || !state.ready;
    root.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  window.addEventListener('beforeunload', function (event) {
    if (isDirty()) {
      event.preventDefault();
      event.returnValue = t('unsaved_warning');
      return event.returnValue;
    }
  });

  // ------------------------------------------------------------------------ problem list

  function forThisFile(problem) {
    return !problem.file || problem.file === config.file;
  }

  function problemsFor(elementId) {
    return state.problems.filter(function (p) { return forThisFile(p) && p.element_id === elementId; });
  }

  function renderProblems(adapter) {
    var problems = state.problems;
    while (problemList.firstChild) { problemList.removeChild(problemList.firstChild); }
    problems.forEach(function (problem) {
      var li = document.createElement('li');
      li.className = 'studio-problem';
      li.setAttribute('data-file', problem.file || '');
      li.setAttribute('data-element-id', problem.element_id || '');
      if (!forThisFile(problem)) {
        var link = document.createElement('a');
        link.href = '?file=' + encodeURIComponent(problem.file);
        link.textContent = problem.file;
        li.appendChild(link);
        li.appendChild(document.createTextNode(': '));
      }
      if (problem.element_id) {
        var label = problem.element_name || problem.element_id;
        if (forThisFile(problem) && adapter && adapter.has(problem.element_id)) {
          var button = document.createElement('button');
          button.type = 'button';
          button.className = 'studio-problem-link';
          button.textContent = label;
          button.setAttribute('aria-label', t('problem_select', { name: label + ' (' + problem.element_id + ')' }));
          button.addEventListener('click', function () { adapter.select(problem.element_id); });
          li.appendChild(button);
        } else {
          var strong = document.createElement('strong');
          strong.textContent = label;
          li.appendChild(strong);
        }
        var id = document.createElement('span');
        id.className = 'muted';
        id.textContent = ' (' + problem.element_id + ')';
        li.appendChild(id);
        li.appendChild(document.createTextNode(': '));
      }
      li.appendChild(document.createTextNode(problem.message));
      problemList.appendChild(li);
    });
    problemCount.textContent = String(problems.length);
    noProblems.hidden = problems.length > 0;
    noProblems.textContent = t('no_problems');
    problemsSection.classList.toggle('has-problems', problems.length > 0);
    if (adapter) { adapter.mark(problems.filter(forThisFile)); }
  }

  // ------------------------------------------------------------------------ server calls

  function postJson(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': config.csrf_token, 'Accept': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  /** A field still being typed in (Ctrl+S) commits on blur: do that before exporting. */
  function commitPending() {
    var active = document.activeElement;
    if (active && active.form && active.form.id === 'studio-properties' &&
        (active.tagName === 'INPUT' || active.tagName === 'TEXTAREA')) {
      active.blur();
      active.focus();
    }
  }

  function save(adapter) {
    if (state.busy) { return Promise.resolve(); }
    commitPending();
    setBusy(true);
    setStatus(t('status_saving'));
    var changesAtExport = state.changes;
    return adapter.exportXml().then(function (xml) {
      return postJson(config.save_url, { xml: xml, revision: state.revision });
    }).then(function (result) {
      var data = result.data || {};
      if (result.status === 200 && data.saved) {
        state.revision = data.revision;
        state.savedAt = changesAtExport;
        state.problems = data.problems || [];
        refreshDirty();
        renderProblems(adapter);
        var count = state.problems.length;
        setStatus(count ? t('status_saved_problems', { revision: data.revision, count: count })
          : t('status_saved', { revision: data.revision }), count ? 'error' : 'ok');
      } else if (result.status === 409) {
        setStatus(t('status_conflict', { revision: data.revision }), 'error');
      } else {
        if (data.problems) { state.problems = data.problems; renderProblems(adapter); }
        setStatus(t('status_refused', { error: data.error || ('HTTP ' + result.status) }), 'error');
      }
    }).catch(function (error) {
      setStatus(t('status_failed', { error: error && error.message ? error.message : String(error) }), 'error');
    }).then(function () { setBusy(false); });
  }

  function check(adapter) {
    if (state.busy) { return Promise.resolve(); }
    commitPending();
    setBusy(true);
    setStatus(t('status_checking'));
    return adapter.exportXml().then(function (xml) {
      return postJson(config.validate_url, { xml: xml });
    }).then(function (result) {
      var data = result.data || {};
      if (result.status === 200) {
        state.problems = data.problems || [];
        renderProblems(adapter);
        var count = state.problems.length;
        setStatus(count ? t('status_check_problems', { count: count }) : t('status_check_ok'), count ? 'error' : 'ok');
      } else {
        if (data.problems) { state.problems = data.problems; renderProblems(adapter); }
        setStatus(t('status_check_failed', { error: data.error || ('HTTP ' + result.status) }), 'error');
      }
    }).catch(function (error) {
      setStatus(t('status_check_failed', { error: error && error.message ? error.message : String(error) }), 'error');
    }).then(function () { setBusy(false); });
  }

  // ------------------------------------------------------------------------ BPMN

  function bpmnAdapter(descriptor) {
    var modeler = new window.BpmnJS({
      container: canvasNode,
      moddleExtensions: { spiffworkflow: descriptor }
    });
    var canvas = modeler.get('canvas');
    var elementRegistry = modeler.get('elementRegistry');
    var overlays = modeler.get('overlays');
    var selection = modeler.get('selection');
    var marked = [];
    window.pathwaysModeler = modeler;  // for the browser tests and the curious

    var panelForm = document.getElementById('studio-properties');
    var panel = new window.PathwaysPropertiesPanel(modeler, panelForm, { config: config, t: t, problemsFor: problemsFor });

    modeler.on('commandStack.changed', changed);

    /** The whole diagram in view (at most 100 %), its left edge clear of the tool palette. */
    function fitClearOfPalette() {
      var box = canvas.viewbox();
      var inner = box.inner, outer = box.outer;
      if (!inner || !inner.width || !inner.height) { canvas.zoom('fit-viewport', 'auto'); return; }
      var left = 90, pad = 24;
      var scale = Math.min((outer.width - left - pad) / inner.width, (outer.height - 2 * pad) / inner.height, 1);
      canvas.viewbox({
        x: inner.x - left / scale,
        y: inner.y - (outer.height / scale - inner.height) / 2,
        width: outer.width / scale,
        height: outer.height / scale
      });
    }

    return {
      modeler: modeler,
      load: function (xml) {
        // Parse first: a file without a diagram (written by hand) gets one laid out for it.
        var moddle = modeler.get('moddle');
        return moddle.fromXML(xml, 'bpmn:Definitions').then(function (parsed) {
          var laidOut = window.PathwaysLayout ? window.PathwaysLayout.ensureDiagram(moddle, parsed.rootElement) : 0;
          return modeler.importDefinitions(parsed.rootElement).then(function (result) {
            fitClearOfPalette();
            var warnings = (parsed.warnings || []).concat(result.warnings || []);
            return { warnings: warnings, laidOut: laidOut };
          });
        });
      },
      exportXml: function () {
        return modeler.saveXML({ format: true }).then(function (result) { return result.xml; });
      },
      has: function (id) { return !!elementRegistry.get(id); },
      select: function (id) {
        var element = elementRegistry.get(id);
        if (!element) { return; }
        if (canvas.zoom() < 0.8) { canvas.zoom(1); }  // readable, then brought into view
        canvas.scrollToElement(element);
        selection.select(element);
        var heading = document.getElementById('studio-properties-title');
        if (heading) { heading.focus(); }
      },
      mark: function (problems) {
        marked.forEach(function (id) {
          if (elementRegistry.get(id)) { canvas.removeMarker(id, 'pw-error'); }
        });
        overlays.remove({ type: 'pw-error' });
        marked = [];
        problems.forEach(function (problem) {
          var id = problem.element_id;
          var element = id && elementRegistry.get(id);
          if (!element || marked.indexOf(id) !== -1) { return; }
          canvas.addMarker(id, 'pw-error');
          marked.push(id);
          var badge = document.createElement('span');
          badge.className = 'pw-error-badge';
          badge.textContent = '!';
          badge.setAttribute('aria-hidden', 'true');
          var position = element.waypoints ? { top: -10, left: -10 } : { top: -10, right: 10 };
          overlays.add(id, 'pw-error', { position: position, html: badge });
        });
        panel.scheduleRender();
      }
    };
  }

  // ------------------------------------------------------------------------ DMN

  function dmnAdapter() {
    var modeler = new window.DmnJS({ container: canvasNode });
    var viewsNode = document.getElementById('studio-views');
    var highlight = document.createElement('style');
    document.head.appendChild(highlight);
    var problemIds = [];
    var watched = null;
    window.pathwaysModeler = modeler;

    function watchActiveViewer() {
      var viewer = modeler.getActiveViewer();
      if (!viewer || viewer === watched) { return; }
      watched = viewer;
      viewer.get('eventBus').on('commandStack.changed', changed);
    }

    function renderViews() {
      var views = modeler.getViews().filter(function (v) { return v.type === 'decisionTable' || v.type === 'literalExpression'; });
      var active = modeler.getActiveView();
      while (viewsNode.firstChild) { viewsNode.removeChild(viewsNode.firstChild); }
      var onTable = active && views.some(function (v) { return v.element === active.element; });
      viewsNode.hidden = views.length < 2 && onTable;  // shown to come back from the DRD view too
      views.forEach(function (view) {
        var button = document.createElement('button');
        button.type = 'button';
        button.textContent = t('decision_view', { name: view.element.name || view.element.id });
        button.setAttribute('aria-pressed', active && active.element === view.element ? 'true' : 'false');
        button.addEventListener('click', function () { modeler.open(view); });
        viewsNode.appendChild(button);
      });
    }

    modeler.on('views.changed', function () {
      watchActiveViewer();
      renderViews();
    });

    function viewFor(id) {
      return modeler.getViews().filter(function (v) {
        return (v.type === 'decisionTable' || v.type === 'literalExpression') && v.element.id === id;
      })[0];
    }

    function cellSelector(id) {
      var safe = window.CSS && CSS.escape ? CSS.escape(id) : id.replace(/["\\]/g, '\\$&');
      return '[data-element-id="' + safe + '"],td[data-row-id="' + safe + '"],[data-col-id="' + safe + '"]';
    }

    function modelIds() {
      var ids = {};
      var seen = [];
      (function walk(node) {
        if (!node || typeof node !== 'object' || seen.indexOf(node) !== -1) { return; }
        seen.push(node);
        if (node.id) { ids[node.id] = node; }
        Object.keys(node).forEach(function (key) {
          if (key.charAt(0) === '$') { return; }
          var value = node[key];
          if (Array.isArray(value)) { value.forEach(walk); } else if (value && value.$type) { walk(value); }
        });
      })(modeler.getDefinitions());
      return ids;
    }

    return {
      modeler: modeler,
      load: function (xml) {
        return modeler.importXML(xml).then(function (result) {
          var views = modeler.getViews();
          var table = views.filter(function (v) { return v.type === 'decisionTable'; })[0] ||
            views.filter(function (v) { return v.type === 'literalExpression'; })[0];
          var opened = table ? modeler.open(table) : Promise.resolve();
          return opened.then(function () {
            watchActiveViewer();
            renderViews();
            return { warnings: result.warnings || [], laidOut: 0 };
          });
        });
      },
      exportXml: function () {
        return modeler.saveXML({ format: true }).then(function (result) { return result.xml; });
      },
      has: function (id) { return !!modelIds()[id]; },
      select: function (id) {
        var view = viewFor(id);
        var opened = view && modeler.getActiveView() !== view ? modeler.open(view) : Promise.resolve();
        opened.then(function () {
          var target = canvasNode.querySelector(cellSelector(id));
          if (target) {
            target.scrollIntoView({ block: 'center', inline: 'nearest' });
            if (target.focus) { target.focus(); }
          }
        });
      },
      mark: function (problems) {
        problemIds = problems.map(function (p) { return p.element_id; }).filter(Boolean);
        highlight.textContent = problemIds.map(function (id) {
          return cellSelector(id).split(',').map(function (s) { return '.studio-dmn ' + s; }).join(',');
        }).join(',') + (problemIds.length ? '{outline:3px solid #c8001a;outline-offset:-3px;background:#fbeeee!important}' : '');
      }
    };
  }

  // ------------------------------------------------------------------------ start

  function start(adapter) {
    saveButton.addEventListener('click', function () { save(adapter); });
    checkButton.addEventListener('click', function () { check(adapter); });
    document.addEventListener('keydown', function (event) {
      if ((event.ctrlKey || event.metaKey) && (event.key === 's' || event.key === 'S')) {
        event.preventDefault();
        if (state.ready) { save(adapter); }
      }
    });
    setStatus(t('status_loading'));
    return fetch(config.xml_url, { credentials: 'same-origin', headers: { 'Accept': 'application/xml, text/xml' } })
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      })
      .then(function (xml) { return adapter.load(xml); })
      .then(function (loaded) {
        var warnings = loaded.warnings;
        state.ready = true;
        state.changes = state.savedAt = 0;
        if (loaded.laidOut) { state.changes = 1; }  // the new diagram is not saved yet
        refreshDirty();
        setBusy(false);
        renderProblems(adapter);
        if (warnings.length) {
          setStatus(t('status_import_warnings', { count: warnings.length }), 'error');
          if (window.console) { warnings.forEach(function (w) { console.warn(w.message || w); }); }
        } else if (loaded.laidOut) {
          setStatus(t('status_laid_out'));
        } else {
          setStatus(t('status_loaded'));
        }
        root.setAttribute('data-ready', 'true');
      })
      .catch(function (error) {
        setStatus(t('status_load_failed', { error: error && error.message ? error.message : String(error) }), 'error');
        root.setAttribute('data-ready', 'failed');
      });
  }

  if (config.kind === 'dmn' || root.getAttribute('data-kind') === 'dmn') {
    start(dmnAdapter());
  } else {
    fetch(root.getAttribute('data-moddle-url'), { credentials: 'same-origin' })
      .then(function (response) { return response.json(); })
      .then(function (descriptor) { return start(bpmnAdapter(descriptor)); })
      .catch(function (error) {
        setStatus(t('status_load_failed', { error: error && error.message ? error.message : String(error) }), 'error');
        root.setAttribute('data-ready', 'failed');
      });
  }
})();
