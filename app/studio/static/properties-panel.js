/* Pathways studio: the properties panel of the BPMN editor.
 *
 * Plain JavaScript, no framework: a <form> in the sidebar shows the fields Pathways needs for
 * the selected element and writes every change through bpmn-js' command stack
 * (element.updateProperties / element.updateModdleProperties), so each change is one undo step.
 *
 *   user task        form key (config.form_keys), role (its lane, read-only), allow back, instructions
 *   lane             role (config.roles; the lane's name)
 *   service task     operation (config.operations), result variable, parameters
 *   timer event      type (duration, date, cycle) and its expression
 *   sequence flow    out of an exclusive/inclusive gateway: condition, default flow
 *   call activity    called process (config.call_targets)
 *   business rule    decision (config.decisions; spiffworkflow:calledDecisionId)
 *
 * Usage: new PathwaysPropertiesPanel(modeler, formElement, {config, t, problemsFor}).
 */
(function () {
  'use strict';

  var SPIFF = 'spiffworkflow:';

  function is(bo, type) {
    return !!(bo && bo.$instanceOf && bo.$instanceOf(type));
  }

  function localName(type) {
    return String(type || '').replace(/^.*:/, '');
  }

  /** "userTask" -> "User task" (the fallback when no translated type name is given). */
  function humanise(name) {
    var words = name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) { return; }
      if (key === 'text') { node.textContent = value; }
      else if (key === 'className') { node.className = value; }
      else if (key in node && typeof value !== 'string') { node[key] = value; }
      else { node.setAttribute(key, value === true ? '' : value); }
    });
    (children || []).forEach(function (child) {
      if (child) { node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child); }
    });
    return node;
  }

  function PathwaysPropertiesPanel(modeler, form, options) {
    this.modeler = modeler;
    this.form = form;
    this.config = options.config || {};
    this.t = options.t;
    this.problemsFor = options.problemsFor || function () { return []; };
    this.element = null;
    this._pending = null;
    this._uid = 0;

    this.modeling = modeler.get('modeling');
    this.moddle = modeler.get('moddle');
    this.commandStack = modeler.get('commandStack');
    this.elementRegistry = modeler.get('elementRegistry');

    var self = this;
    // One user action may need several commands (create the extension elements, then set a
    // value): run them inside one command so that a single undo reverts all of them.
    this.commandStack.register('pathways.multi', {
      preExecute: function (context) {
        context.commands.forEach(function (command) {
          self.commandStack.execute(command[0], command[1]);
        });
      }
    });

    var eventBus = modeler.get('eventBus');
    eventBus.on('selection.changed', function (event) {
      var selected = event.newSelection.length === 1 ? event.newSelection[0] : null;
      if (selected && selected.labelTarget) { selected = selected.labelTarget; }
      self.element = selected;
      self.render();
    });
    eventBus.on('elements.changed', function (event) {
      if (!self.element) { return; }
      var current = self.element;
      var touched = event.elements.some(function (changed) {
        return changed === current || changed.id === current.id || changed === current.source;
      });
      if (touched) { self.scheduleRender(); }
    });
    eventBus.on(['import.done', 'root.set'], function () {
      if (self.element && !self.elementRegistry.get(self.element.id)) { self.element = null; }
      self.scheduleRender();
    });

    form.addEventListener('submit', function (event) { event.preventDefault(); });
    this.render();
  }

  var P = PathwaysPropertiesPanel.prototype;

  // ---------------------------------------------------------------- model access and updates

  P.exec = function (commands) {
    commands = commands.filter(Boolean);
    if (!commands.length) { return; }
    if (commands.length === 1) {
      this.commandStack.execute(commands[0][0], commands[0][1]);
    } else {
      this.commandStack.execute('pathways.multi', { commands: commands });
    }
  };

  P.updateProps = function (element, properties) {
    return ['element.updateProperties', { element: element, properties: properties }];
  };

  P.updateModdle = function (element, moddleElement, properties) {
    return ['element.updateModdleProperties', { element: element, moddleElement: moddleElement, properties: properties }];
  };

  P.create = function (type, attrs, parent) {
    var created = this.moddle.create(type, attrs || {});
    if (parent) { created.$parent = parent; }
    return created;
  };

  /** The element's bpmn:ExtensionElements, and the commands that attach it if it is new. */
  P.extensions = function (element, commands) {
    var bo = element.businessObject;
    var ext = bo.get('extensionElements');
    if (!ext) {
      ext = this.create('bpmn:ExtensionElements', { values: [] }, bo);
      commands.push(this.updateProps(element, { extensionElements: ext }));
    }
    return ext;
  };

  /** The first extension element of ``type``, created (and attached by ``commands``) if missing. */
  P.extension = function (element, type, attrs, commands) {
    var ext = this.extensions(element, commands);
    var found = (ext.get('values') || []).filter(function (v) { return is(v, type); })[0];
    if (!found) {
      found = this.create(type, attrs, ext);
      commands.push(this.updateModdle(element, ext, { values: (ext.get('values') || []).concat([found]) }));
    }
    return found;
  };

  P.findExtension = function (bo, type) {
    var ext = bo.get ? bo.get('extensionElements') : bo.extensionElements;
    return ext ? (ext.get('values') || []).filter(function (v) { return is(v, type); })[0] : undefined;
  };

  P.spiffProperty = function (bo, name) {
    var props = this.findExtension(bo, SPIFF + 'Properties');
    if (!props) { return undefined; }
    return (props.get('properties') || []).filter(function (p) { return p.name === name; })[0];
  };

  /** Set (or, with ``value === null``, remove) the spiffworkflow:property ``name``. */
  P.setSpiffProperty = function (element, name, value) {
    var bo = element.businessObject;
    var existing = this.spiffProperty(bo, name);
    var commands = [];
    if (value === null) {
      if (existing) {
        var list = existing.$parent.get('properties').filter(function (p) { return p !== existing; });
        commands.push(this.updateModdle(element, existing.$parent, { properties: list }));
      }
    } else if (existing) {
      commands.push(this.updateModdle(element, existing, { value: value }));
    } else {
      var props = this.extension(element, SPIFF + 'Properties', { properties: [] }, commands);
      var created = this.create(SPIFF + 'Property', { name: name, value: value }, props);
      commands.push(this.updateModdle(element, props, { properties: (props.get('properties') || []).concat([created]) }));
    }
    this.exec(commands);
  };

  P.laneOf = function (bo) {
    var lanes = this.elementRegistry.filter(function (shape) {
      return is(shape.businessObject, 'bpmn:Lane') && (shape.businessObject.get('flowNodeRef') || []).indexOf(bo) !== -1;
    });
    return lanes.length ? lanes[lanes.length - 1].businessObject : null;
  };

  // ---------------------------------------------------------------------------- form fields

  P.id = function (key) {
    return 'pp-' + key.replace(/[^A-Za-z0-9_-]/g, '-');
  };

  /** A labelled field: <div class="field"><label>…</label>control<p help></div>. */
  P.field = function (key, label, control, help) {
    var id = this.id(key);
    control.id = id;
    control.setAttribute('data-key', key);
    var children = [el('label', { 'for': id, text: label })];
    if (help) {
      var helpId = id + '-help';
      control.setAttribute('aria-describedby', helpId);
      children.push(el('p', { className: 'field-help', id: helpId, text: help }));
    }
    children.push(control);
    return el('div', { className: 'field' }, children);
  };

  P.onCommit = function (control, commit) {
    var self = this;
    control.addEventListener('change', function () {
      var value = control.type === 'checkbox' ? control.checked : control.value;
      commit.call(self, value);
    });
    return control;
  };

  P.textInput = function (key, label, value, commit, opts) {
    opts = opts || {};
    var input = el('input', { type: 'text', value: value || '', readOnly: !!opts.readonly,
      className: opts.code ? 'code' : null, spellcheck: opts.code ? 'false' : null, autocomplete: 'off' });
    if (commit) { this.onCommit(input, commit); }
    return this.field(key, label, input, opts.help);
  };

  P.textArea = function (key, label, value, commit, opts) {
    opts = opts || {};
    var area = el('textarea', { className: opts.prose ? 'prose' : null, spellcheck: opts.prose ? null : 'false', rows: opts.rows || 3 });
    area.value = value || '';
    if (opts.disabled) { area.disabled = true; }
    this.onCommit(area, commit);
    return this.field(key, label, area, opts.help);
  };

  /** A <select> of ``choices`` ([{value, label}]); an unknown current value stays, marked. */
  P.select = function (key, label, choices, value, commit, opts) {
    opts = opts || {};
    var select = el('select', {});
    var t = this.t;
    var known = choices.some(function (c) { return c.value === value; });
    if (!value || !known) {
      select.appendChild(el('option', { value: value || '', text: value ? t('unknown_option', { value: value }) : t('choose') }));
    }
    choices.forEach(function (choice) {
      var option = el('option', { value: choice.value, text: choice.label });
      if (choice.value === value) { option.selected = true; }
      select.appendChild(option);
    });
    this.onCommit(select, function (v) { if (v) { commit.call(this, v); } });
    return this.field(key, label, select, opts.help);
  };

  P.checkbox = function (key, label, checked, commit, help) {
    var id = this.id(key);
    var box = el('input', { type: 'checkbox', id: id, 'data-key': key });
    box.checked = !!checked;
    this.onCommit(box, commit);
    var children = [el('div', { className: 'option' }, [box, el('label', { 'for': id, text: label })])];
    if (help) {
      box.setAttribute('aria-describedby', id + '-help');
      children.push(el('p', { className: 'field-help', id: id + '-help', text: help }));
    }
    return el('div', { className: 'field' }, children);
  };

  P.readOnlyText = function (key, label, text, help) {
    return this.textInput(key, label, text, null, { readonly: true, help: help });
  };

  // -------------------------------------------------------------------------------- render

  P.scheduleRender = function () {
    var self = this;
    if (this._pending) { return; }
    this._pending = window.setTimeout(function () { self._pending = null; self.render(); }, 0);
  };

  P.render = function () {
    if (this._pending) { window.clearTimeout(this._pending); this._pending = null; }
    var form = this.form;
    var active = document.activeElement;
    var focusKey = active && form.contains(active) ? active.getAttribute('data-key') : null;

    while (form.firstChild) { form.removeChild(form.firstChild); }
    var element = this.element;
    if (element && !this.elementRegistry.get(element.id)) { element = this.element = null; }
    if (!element || !element.businessObject || element.type === 'label') {
      form.appendChild(el('p', { className: 'muted', text: this.t('panel_select') }));
      return;
    }
    var bo = element.businessObject;
    var type = localName(bo.$type);
    var typeName = this.t('type_' + type, null, humanise(type));
    var t = this.t;

    form.appendChild(el('p', { className: 'element-type', text: typeName }));

    var problems = this.problemsFor(bo.id);
    if (problems.length) {
      form.appendChild(el('div', { className: 'problems', role: 'group', 'aria-label': t('element_problems') },
        [el('strong', { text: t('element_problems') }),
         el('ul', {}, problems.map(function (p) { return el('li', { className: 'field-error', text: p.message }); }))]));
    }

    form.appendChild(this.readOnlyText('id', t('field_id'), bo.id));

    if (is(bo, 'bpmn:Lane')) {
      this.renderLane(element, bo);
    } else if (!is(bo, 'bpmn:TextAnnotation') && !is(bo, 'bpmn:Group')) {
      form.appendChild(this.textInput('name', t('field_name'), bo.name, function (value) {
        this.exec([this.updateProps(element, { name: value || undefined })]);
      }));
    }

    if (is(bo, 'bpmn:UserTask')) { this.renderUserTask(element, bo); }
    if (is(bo, 'bpmn:ServiceTask')) { this.renderServiceTask(element, bo); }
    if (is(bo, 'bpmn:BusinessRuleTask')) { this.renderBusinessRule(element, bo); }
    if (is(bo, 'bpmn:CallActivity')) { this.renderCallActivity(element, bo); }
    if (is(bo, 'bpmn:Event')) { this.renderTimer(element, bo); }
    if (is(bo, 'bpmn:SequenceFlow')) { this.renderSequenceFlow(element, bo); }

    if (focusKey) {
      var again = form.querySelector('[data-key="' + focusKey.replace(/["\\]/g, '\\$&') + '"]');
      if (again) { again.focus(); }
    }
  };

  P.renderLane = function (element, bo) {
    var t = this.t;
    var roles = (this.config.roles || []).map(function (r) { return { value: r.value, label: r.title || r.value }; });
    this.form.appendChild(this.select('lane-role', t('field_role'), roles, bo.name, function (value) {
      this.exec([this.updateProps(element, { name: value })]);
    }, { help: t('help_lane_role') }));
  };

  P.renderUserTask = function (element, bo) {
    var t = this.t;
    var form = this.form;
    var forms = (this.config.form_keys || []).map(function (f) {
      return { value: f.key, label: f.title && f.title !== f.key ? f.title + ' (' + f.key + ')' : f.key };
    });
    var formKey = this.spiffProperty(bo, 'formKey');
    form.appendChild(this.select('form-key', t('field_form_key'), forms, formKey && formKey.value, function (value) {
      this.setSpiffProperty(element, 'formKey', value);
    }, { help: t('help_form_key') }));

    var lane = this.laneOf(bo);
    form.appendChild(this.readOnlyText('role', t('field_role'), lane ? (lane.name || lane.id) : t('no_lane'),
      lane ? t('help_role_from_lane') : null));

    var allowBack = this.spiffProperty(bo, 'allowBack');
    var allowed = !allowBack || String(allowBack.value).trim().toLowerCase() !== 'false';
    form.appendChild(this.checkbox('allow-back', t('field_allow_back'), allowed, function (checked) {
      this.setSpiffProperty(element, 'allowBack', checked ? null : 'false');
    }, t('help_allow_back')));

    var instructions = this.spiffProperty(bo, 'instructions');
    form.appendChild(this.textArea('instructions', t('field_instructions'), instructions && instructions.value, function (value) {
      this.setSpiffProperty(element, 'instructions', value.trim() ? value : null);
    }, { prose: true, rows: 5, help: t('help_instructions') }));
  };

  P.renderServiceTask = function (element, bo) {
    var t = this.t;
    var self = this;
    var form = this.form;
    var operator = this.findExtension(bo, SPIFF + 'ServiceTaskOperator');
    var operations = (this.config.operations || []).map(function (o) {
      return { value: o.name, label: o.title && o.title !== o.name ? o.title + ' (' + o.name + ')' : o.name };
    });

    function ensureOperator(commands) {
      return self.extension(element, SPIFF + 'ServiceTaskOperator', {}, commands);
    }

    form.appendChild(this.select('operation', t('field_operation'), operations, operator && operator.get('id'), function (value) {
      var commands = [];
      var op = ensureOperator(commands);
      commands.push(this.updateModdle(element, op, { id: value }));
      this.exec(commands);
    }));

    form.appendChild(this.textInput('result-variable', t('field_result_variable'), operator && operator.get('resultVariable'),
      function (value) {
        var commands = [];
        var op = ensureOperator(commands);
        commands.push(this.updateModdle(element, op, { resultVariable: value.trim() || undefined }));
        this.exec(commands);
      }, { code: true, help: t('help_result_variable') }));

    var list = operator && operator.get('parameterList');
    var params = list ? (list.get('parameters') || []) : [];
    var fieldset = el('fieldset', { className: 'field' }, [el('legend', { text: t('field_parameters') })]);
    var ul = el('ul', { className: 'params' });
    params.forEach(function (param, index) {
      var idKey = 'param-' + index + '-id';
      var valueKey = 'param-' + index + '-value';
      var idInput = el('input', { type: 'text', id: self.id(idKey), 'data-key': idKey, value: param.get('id') || '', className: 'code', spellcheck: 'false', autocomplete: 'off' });
      var valueInput = el('input', { type: 'text', id: self.id(valueKey), 'data-key': valueKey, value: param.get('value') || '', className: 'code', spellcheck: 'false', autocomplete: 'off', 'aria-describedby': self.id('params-help') });
      self.onCommit(idInput, function (value) { this.exec([this.updateModdle(element, param, { id: value.trim() })]); });
      self.onCommit(valueInput, function (value) { this.exec([this.updateModdle(element, param, { value: value })]); });
      var remove = el('button', { type: 'button', className: 'secondary small', 'data-key': 'param-' + index + '-remove',
        text: t('remove_parameter'), 'aria-label': t('remove_parameter_named', { name: param.get('id') || String(index + 1) }) });
      remove.addEventListener('click', function () {
        self.exec([self.updateModdle(element, list, { parameters: list.get('parameters').filter(function (p) { return p !== param; }) })]);
        var add = self.form.querySelector('[data-key="param-add"]');
        if (add) { add.focus(); }
      });
      ul.appendChild(el('li', {}, [
        el('div', {}, [el('label', { 'for': self.id(idKey), text: t('param_id') }), idInput]),
        el('div', {}, [el('label', { 'for': self.id(valueKey), text: t('param_value') }), valueInput]),
        remove]));
    });
    fieldset.appendChild(ul);
    fieldset.appendChild(el('p', { className: 'field-help', id: this.id('params-help'), text: t('help_parameter_value') }));
    var add = el('button', { type: 'button', className: 'secondary small', 'data-key': 'param-add', text: t('add_parameter') });
    add.addEventListener('click', function () {
      var commands = [];
      var op = ensureOperator(commands);
      var plist = op.get('parameterList');
      if (!plist) {
        plist = self.create(SPIFF + 'Parameters', { parameters: [] }, op);
        commands.push(self.updateModdle(element, op, { parameterList: plist }));
      }
      var existing = plist.get('parameters') || [];
      var n = existing.length + 1;
      var taken = existing.map(function (p) { return p.get('id'); });
      while (taken.indexOf('parameter_' + n) !== -1) { n += 1; }
      var created = self.create(SPIFF + 'Parameter', { id: 'parameter_' + n, type: 'str', value: '' }, plist);
      commands.push(self.updateModdle(element, plist, { parameters: existing.concat([created]) }));
      self.exec(commands);
      window.setTimeout(function () {
        var field = self.form.querySelector('[data-key="param-' + (existing.length) + '-id"]');
        if (field) { field.focus(); field.select(); }
      }, 0);
    });
    fieldset.appendChild(add);
    form.appendChild(fieldset);
  };

  P.renderBusinessRule = function (element, bo) {
    var t = this.t;
    var decision = this.findExtension(bo, SPIFF + 'CalledDecisionId');
    var decisions = (this.config.decisions || []).map(function (d) {
      return { value: d.id, label: d.title && d.title !== d.id ? d.title + ' (' + d.id + ')' : d.id };
    });
    this.form.appendChild(this.select('decision', t('field_decision'), decisions, decision && (decision.get('value') || '').trim(), function (value) {
      var commands = [];
      var called = this.extension(element, SPIFF + 'CalledDecisionId', {}, commands);
      commands.push(this.updateModdle(element, called, { value: value }));
      this.exec(commands);
    }));
  };

  P.renderCallActivity = function (element, bo) {
    var t = this.t;
    var targets = (this.config.call_targets || []).map(function (c) {
      return { value: c.id, label: c.title && c.title !== c.id ? c.title + ' (' + c.id + ')' : c.id };
    });
    this.form.appendChild(this.select('called-process', t('field_called_process'), targets, bo.get('calledElement'), function (value) {
      this.exec([this.updateProps(element, { calledElement: value })]);
    }));
  };

  var TIMER_TYPES = ['timeDuration', 'timeDate', 'timeCycle'];

  P.renderTimer = function (element, bo) {
    var t = this.t;
    var self = this;
    var timer = (bo.get('eventDefinitions') || []).filter(function (d) { return is(d, 'bpmn:TimerEventDefinition'); })[0];
    if (!timer) { return; }
    var current = TIMER_TYPES.filter(function (k) { return timer.get(k); })[0] || 'timeDuration';
    var expression = timer.get(current);
    var body = expression ? (expression.get('body') || '') : '';

    function setTimer(kind, text) {
      var props = {};
      TIMER_TYPES.forEach(function (k) { props[k] = undefined; });
      props[kind] = self.create('bpmn:FormalExpression', { body: text }, timer);
      self.exec([self.updateModdle(element, timer, props)]);
    }

    var kinds = [
      { value: 'timeDuration', label: t('timer_duration') },
      { value: 'timeDate', label: t('timer_date') },
      { value: 'timeCycle', label: t('timer_cycle') }
    ];
    this.form.appendChild(el('h3', { text: t('timer_heading') }));
    this.form.appendChild(this.select('timer-type', t('field_timer_type'), kinds, current, function (value) {
      setTimer(value, body);
    }));
    this.form.appendChild(this.textInput('timer-expression', t('field_timer_expression'), body, function (value) {
      setTimer(current, value);
    }, { code: true, help: t('help_timer_' + current) }));
  };

  P.renderSequenceFlow = function (element, bo) {
    var t = this.t;
    var source = bo.get('sourceRef');
    if (!is(source, 'bpmn:ExclusiveGateway') && !is(source, 'bpmn:InclusiveGateway') && !is(source, 'bpmn:ComplexGateway')) {
      return;
    }
    var gateway = element.source || this.elementRegistry.get(source.id);
    var isDefault = source.get('default') === bo;
    var condition = bo.get('conditionExpression');
    this.form.appendChild(this.textArea('condition', t('field_condition'), condition ? condition.get('body') : '', function (value) {
      var text = value.trim();
      this.exec([this.updateProps(element, {
        conditionExpression: text ? this.create('bpmn:FormalExpression', { body: text }, bo) : undefined
      })]);
    }, { disabled: isDefault, help: isDefault ? t('help_condition_default') : t('help_condition') }));
    this.form.appendChild(this.checkbox('default-flow', t('field_default_flow'), isDefault, function (checked) {
      var commands = [this.updateProps(gateway, { 'default': checked ? bo : undefined })];
      if (checked && bo.get('conditionExpression')) {
        commands.push(this.updateProps(element, { conditionExpression: undefined }));
      }
      this.exec(commands);
    }, t('help_default_flow')));
  };

  window.PathwaysPropertiesPanel = PathwaysPropertiesPanel;
})();
