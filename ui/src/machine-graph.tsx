import type { GraphNode, MachineGraph } from './graph.ts';
import { NODE_HEIGHT, NODE_WIDTH, type Layout } from './layout.ts';

/** Counts shown on a node (from `GET /workflows/{id}/stats`). */
export interface NodeCounts {
  at_step: number;
  entered: number;
}

/** What to mark on the graph: an execution's visited steps and edges, and where it is now. */
export interface PathMarks {
  visited: ReadonlySet<string>;
  edges: ReadonlySet<string>;
  current: string | null;
}

interface Props {
  graph: MachineGraph;
  layout: Layout;
  counts?: ReadonlyMap<string, NodeCounts>;
  marks?: PathMarks;
  selected?: string | null;
  onSelect?: (node: GraphNode) => void;
}

const pointsOf = (points: { x: number; y: number }[]) =>
  points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');

/** The machine drawn as SVG at the positions ELK computed; nodes are buttons when `onSelect` is given. */
export function MachineGraphView({ graph, layout, counts, marks, selected, onSelect }: Props) {
  return (
    <div class="graph-scroll">
      {graph.global.length > 0 && (
        <p class="graph-note">
          From any step:{' '}
          {graph.global.map((t) => (
            <span key={t.event} class="global-transition">
              {t.event} → {t.target}
            </span>
          ))}
        </p>
      )}
      <svg
        class="graph"
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        role="img"
        aria-label="state machine of the workflow"
      >
        <defs>
          <marker
            id="arrow"
            viewBox="0 0 10 10"
            refX="9"
            refY="5"
            markerWidth="9"
            markerHeight="9"
            markerUnits="userSpaceOnUse"
            orient="auto"
          >
            <path d="M0,0 L10,5 L0,10 z" class="arrow-head" />
          </marker>
        </defs>
        {graph.edges.map((edge) => {
          const drawn = layout.edges.get(edge.id);
          if (!drawn) return null;
          const taken = marks?.edges.has(edge.id);
          return (
            <g key={edge.id} class={`edge${taken ? ' taken' : ''}`} data-edge={edge.id}>
              <path d={pointsOf(drawn.points)} marker-end="url(#arrow)" />
              {drawn.labels.map((label) => (
                <text key={label.text} x={label.x} y={label.y + 11} class="edge-label">
                  {label.text}
                </text>
              ))}
            </g>
          );
        })}
        {graph.nodes.map((node) => {
          const at = layout.nodes.get(node.id);
          if (!at) return null;
          const count = counts?.get(node.id);
          const height = node.final ? 44 : NODE_HEIGHT;
          const classes = [
            'node',
            node.final ? 'final' : `type-${node.type}`,
            node.initial ? 'initial' : '',
            marks?.visited.has(node.id) ? 'visited' : '',
            marks?.current === node.id ? 'current' : '',
            selected === node.id ? 'selected' : '',
          ]
            .filter(Boolean)
            .join(' ');
          const select = onSelect ? () => onSelect(node) : undefined;
          return (
            <g
              key={node.id}
              class={classes}
              transform={`translate(${at.x},${at.y})`}
              data-node={node.id}
              data-at-step={count?.at_step ?? 0}
              data-entered={count?.entered ?? 0}
              {...(select
                ? {
                    role: 'button',
                    tabIndex: 0,
                    onClick: select,
                    onKeyDown: (event: KeyboardEvent) => {
                      if (event.key === 'Enter' || event.key === ' ') select();
                    },
                  }
                : {})}
            >
              <title>{`${node.id} (${node.type})${node.summary ? `: ${node.summary}` : ''}`}</title>
              <rect width={NODE_WIDTH} height={height} rx={node.final ? 22 : 8} />
              <text x={12} y={20} class="node-id">
                {node.id}
              </text>
              <text x={NODE_WIDTH - 12} y={20} class="node-type">
                {node.final ? 'final' : node.type}
              </text>
              {!node.final && (
                <text x={12} y={40} class="node-summary">
                  {node.summary}
                </text>
              )}
              {count && !node.final && (
                <text x={12} y={64} class="node-counts">
                  <tspan class="at-step">{count.at_step}</tspan> here · <tspan class="entered">{count.entered}</tspan>{' '}
                  entered
                </text>
              )}
              {count && node.final && (
                <text x={12} y={36} class="node-counts">
                  <tspan class="entered">{count.entered}</tspan> ended here
                </text>
              )}
              {marks?.current === node.id && (
                <text x={NODE_WIDTH - 12} y={node.final ? 36 : 64} class="node-current">
                  ● now
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
