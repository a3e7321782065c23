import ELK, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { MachineGraph } from './graph.ts';

/**
 * Lays a machine graph out with ELK's layered algorithm (top to bottom, orthogonal edges, labels
 * beside their edge). ELK runs in this page (its bundled build needs no worker file and no eval).
 */

/** Size of a node box, in SVG units. */
export const NODE_WIDTH = 210;
export const NODE_HEIGHT = 78;
const LABEL_CHAR = 6.6;
const LABEL_HEIGHT = 14;

export interface Point {
  x: number;
  y: number;
}

/** A laid-out graph: where each node is and the polyline and label spot of each edge. */
export interface Layout {
  width: number;
  height: number;
  nodes: Map<string, Point>;
  edges: Map<string, { points: Point[]; labels: { text: string; x: number; y: number }[] }>;
}

const elk = new ELK();

/** Computes the layout of `graph`. */
export async function layoutGraph(graph: MachineGraph): Promise<Layout> {
  const input: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '56',
      'elk.spacing.nodeNode': '36',
      'elk.spacing.edgeLabel': '4',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      'elk.padding': '[top=16,left=16,bottom=16,right=16]',
      // One layering for all: final states only GOAL/CANCEL reach would otherwise sit apart, at the top.
      'elk.separateConnectedComponents': 'false',
    },
    children: graph.nodes.map((node) => ({
      id: node.id,
      width: NODE_WIDTH,
      height: node.final ? 44 : NODE_HEIGHT,
      // Final states at the bottom, also those only the root's GOAL and CANCEL reach (no edge drawn).
      ...(node.final ? { layoutOptions: { 'elk.layered.layering.layerConstraint': 'LAST' } } : {}),
    })),
    edges: graph.edges.map((edge) => ({
      id: edge.id,
      sources: [edge.source],
      targets: [edge.target],
      labels: edge.events.map((text, index) => ({
        id: `${edge.id}#${index}`,
        text,
        width: text.length * LABEL_CHAR,
        height: LABEL_HEIGHT,
      })),
    })),
  };
  const result = await elk.layout(input);
  const nodes = new Map<string, Point>((result.children ?? []).map((c) => [c.id, { x: c.x ?? 0, y: c.y ?? 0 }]));
  const edges: Layout['edges'] = new Map();
  for (const edge of (result.edges ?? []) as ElkExtendedEdge[]) {
    const points = (edge.sections ?? []).flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]);
    const labels = (edge.labels ?? []).map((l) => ({ text: l.text ?? '', x: l.x ?? 0, y: l.y ?? 0 }));
    edges.set(edge.id, { points, labels });
  }
  return { width: result.width ?? 0, height: result.height ?? 0, nodes, edges };
}
