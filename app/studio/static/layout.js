/* Pathways studio: a diagram for BPMN files that have none.
 *
 * A pathway written by hand (e.g. workflows/demo_referral.bpmn) may have no BPMN diagram
 * interchange (DI): bpmn-js cannot show such a file. ensureDiagram() adds one — a simple
 * left-to-right layout: each flow node in the column of its longest path from a start, flows
 * as right-angled lines, flows that go back drawn below, boundary events on their task's lower
 * edge, and a separate drill-down diagram for each sub-process. Lanes are kept in the model
 * (they give the roles) but not drawn. The coordinator saves to keep the layout.
 *
 * Usage: PathwaysLayout.ensureDiagram(moddle, definitions) -> number of diagrams added.
 */
(function () {
  'use strict';

  var SIZES = {
    event: { width: 36, height: 36 },
    gateway: { width: 50, height: 50 },
    activity: { width: 100, height: 80 },
    data: { width: 36, height: 50 }
  };
  var COLUMN = 150;
  var ROW = 130;
  var ORIGIN = { x: 160, y: 100 };

  function is(bo, type) { return !!(bo && bo.$instanceOf && bo.$instanceOf(type)); }

  function sizeOf(bo) {
    if (is(bo, 'bpmn:Event')) { return SIZES.event; }
    if (is(bo, 'bpmn:Gateway')) { return SIZES.gateway; }
    if (is(bo, 'bpmn:DataObjectReference') || is(bo, 'bpmn:DataStoreReference')) { return SIZES.data; }
    return SIZES.activity;
  }

  function planeElementsOf(definitions) {
    var covered = [];
    (definitions.get('diagrams') || []).forEach(function (diagram) {
      var plane = diagram.get('plane');
      if (plane && plane.get('bpmnElement')) { covered.push(plane.get('bpmnElement')); }
    });
    return covered;
  }

  /** Column of each node: its longest path from a node without incoming flows, back edges ignored. */
  function columns(nodes, flows) {
    var incoming = new Map(), outgoing = new Map();
    nodes.forEach(function (n) { incoming.set(n, []); outgoing.set(n, []); });
    flows.forEach(function (f) {
      var s = f.get('sourceRef'), t = f.get('targetRef');
      if (outgoing.has(s) && incoming.has(t)) { outgoing.get(s).push(f); incoming.get(t).push(f); }
    });
    // Depth-first from the starts: an edge to a node on the current path is a back edge.
    var back = new Set(), state = new Map();
    function visit(node) {
      state.set(node, 1);
      outgoing.get(node).forEach(function (f) {
        var t = f.get('targetRef');
        if (state.get(t) === 1) { back.add(f); } else if (!state.has(t)) { visit(t); }
      });
      state.set(node, 2);
    }
    var starts = nodes.filter(function (n) { return incoming.get(n).length === 0; });
    starts.concat(nodes).forEach(function (n) { if (!state.has(n)) { visit(n); } });
    // Longest path over the forward edges (Kahn's order).
    var column = new Map(), remaining = new Map();
    nodes.forEach(function (n) {
      column.set(n, 0);
      remaining.set(n, incoming.get(n).filter(function (f) { return !back.has(f); }).length);
    });
    var queue = nodes.filter(function (n) { return remaining.get(n) === 0; });
    var order = [];
    while (queue.length) {
      var node = queue.shift();
      order.push(node);
      outgoing.get(node).forEach(function (f) {
        if (back.has(f)) { return; }
        var t = f.get('targetRef');
        column.set(t, Math.max(column.get(t), column.get(node) + 1));
        remaining.set(t, remaining.get(t) - 1);
        if (remaining.get(t) === 0) { queue.push(t); }
      });
    }
    return { column: column, order: order, back: back };
  }

  function layoutContainer(moddle, container, ids) {
    function newId(base) {
      var id = base, n = 1;
      while (ids.has(id)) { n += 1; id = base + '_' + n; }
      ids.add(id);
      return id;
    }
    function bounds(x, y, size) {
      return moddle.create('dc:Bounds', { x: Math.round(x), y: Math.round(y), width: size.width, height: size.height });
    }
    function point(x, y) { return moddle.create('dc:Point', { x: Math.round(x), y: Math.round(y) }); }

    var elements = container.get('flowElements') || [];
    var flows = elements.filter(function (e) { return is(e, 'bpmn:SequenceFlow'); });
    var boundary = elements.filter(function (e) { return is(e, 'bpmn:BoundaryEvent'); });
    var nodes = elements.filter(function (e) {
      return is(e, 'bpmn:FlowNode') && !is(e, 'bpmn:BoundaryEvent');
    });
    var layout = columns(nodes, flows);
    var rows = new Map(), placed = new Map();
    var lowest = ORIGIN.y;
    layout.order.forEach(function (node) {
      var col = layout.column.get(node);
      var row = rows.get(col) || 0;
      rows.set(col, row + 1);
      var size = sizeOf(node);
      var cx = ORIGIN.x + col * COLUMN + SIZES.activity.width / 2;
      var cy = ORIGIN.y + row * ROW + SIZES.activity.height / 2;
      var box = { x: cx - size.width / 2, y: cy - size.height / 2, width: size.width, height: size.height };
      placed.set(node, box);
      lowest = Math.max(lowest, box.y + box.height);
    });
    var shapes = [];
    placed.forEach(function (box, node) {
      var attrs = { id: newId(node.id + '_di'), bpmnElement: node, bounds: bounds(box.x, box.y, box) };
      if (is(node, 'bpmn:SubProcess')) { attrs.isExpanded = false; }
      shapes.push(moddle.create('bpmndi:BPMNShape', attrs));
    });
    var perHost = new Map();
    boundary.forEach(function (event) {
      var host = placed.get(event.get('attachedToRef'));
      if (!host) { return; }
      var index = perHost.get(host) || 0;
      perHost.set(host, index + 1);
      var box = { x: host.x + 12 + index * 44, y: host.y + host.height - 18, width: 36, height: 36 };
      placed.set(event, box);
      shapes.push(moddle.create('bpmndi:BPMNShape', { id: newId(event.id + '_di'), bpmnElement: event,
        bounds: bounds(box.x, box.y, box) }));
      lowest = Math.max(lowest, box.y + box.height);
    });
    var edges = [];
    var below = lowest + 50;
    flows.forEach(function (flow) {
      var s = placed.get(flow.get('sourceRef')), t = placed.get(flow.get('targetRef'));
      if (!s || !t) { return; }
      var points;
      var sx = s.x + s.width, sy = s.y + s.height / 2, tx = t.x, ty = t.y + t.height / 2;
      if (is(flow.get('sourceRef'), 'bpmn:BoundaryEvent')) {
        var bx = s.x + s.width / 2, by = s.y + s.height;
        points = [point(bx, by), point(bx, ty), point(tx, ty)];
        if (ty <= by) { points = [point(bx, by), point(bx, by + 30), point(tx - 20, by + 30), point(tx - 20, ty), point(tx, ty)]; }
      } else if (layout.back.has(flow) || tx <= sx) {
        var scx = s.x + s.width / 2, tcx = t.x + t.width / 2;
        points = [point(scx, s.y + s.height), point(scx, below), point(tcx, below), point(tcx, t.y + t.height)];
        below += 15;
      } else if (Math.abs(sy - ty) < 1 && layout.column.get(flow.get('targetRef')) - layout.column.get(flow.get('sourceRef')) > 1) {
        // Same row, columns skipped: go over the nodes in between.
        var over = Math.min(s.y, t.y) - 35;
        points = [point(s.x + s.width / 2, s.y), point(s.x + s.width / 2, over), point(t.x + t.width / 2, over), point(t.x + t.width / 2, t.y)];
      } else if (Math.abs(sy - ty) < 1) {
        points = [point(sx, sy), point(tx, ty)];
      } else {
        var mid = tx - 25;
        points = [point(sx, sy), point(mid, sy), point(mid, ty), point(tx, ty)];
      }
      edges.push(moddle.create('bpmndi:BPMNEdge', { id: newId(flow.id + '_di'), bpmnElement: flow, waypoint: points }));
    });
    var plane = moddle.create('bpmndi:BPMNPlane', { id: newId(container.id + '_plane'), bpmnElement: container,
      planeElement: shapes.concat(edges) });
    shapes.concat(edges).forEach(function (e) { e.$parent = plane; });
    var diagram = moddle.create('bpmndi:BPMNDiagram', { id: newId(container.id + '_diagram'), plane: plane });
    plane.$parent = diagram;
    var added = [diagram];
    nodes.forEach(function (node) {
      if (is(node, 'bpmn:SubProcess')) { added = added.concat(layoutContainer(moddle, node, ids)); }
    });
    return added;
  }

  function allIds(definitions) {
    var ids = new Set(), seen = new Set();
    (function walk(node) {
      if (!node || typeof node !== 'object' || seen.has(node)) { return; }
      seen.add(node);
      if (typeof node.id === 'string') { ids.add(node.id); }
      Object.keys(node).forEach(function (key) {
        if (key.charAt(0) === '$') { return; }
        var value = node[key];
        if (Array.isArray(value)) { value.forEach(walk); } else if (value && value.$type) { walk(value); }
      });
    })(definitions);
    return ids;
  }

  /** Add a diagram to ``definitions`` for a process that has none; returns how many were added. */
  function ensureDiagram(moddle, definitions) {
    var covered = planeElementsOf(definitions);
    var roots = definitions.get('rootElements') || [];
    var collaboration = roots.filter(function (r) { return is(r, 'bpmn:Collaboration'); })[0];
    if (collaboration && covered.indexOf(collaboration) !== -1) { return 0; }
    var processes = roots.filter(function (r) { return is(r, 'bpmn:Process'); });
    var missing = processes.filter(function (p) { return covered.indexOf(p) === -1; });
    if (covered.length || !missing.length) { return 0; }
    var main = missing.filter(function (p) { return p.get('isExecutable'); })[0] || missing[0];
    var ids = allIds(definitions);
    var diagrams = layoutContainer(moddle, main, ids);
    diagrams.forEach(function (d) { d.$parent = definitions; });
    definitions.set('diagrams', (definitions.get('diagrams') || []).concat(diagrams));
    return diagrams.length;
  }

  window.PathwaysLayout = { ensureDiagram: ensureDiagram };
})();
