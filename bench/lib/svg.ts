// A dependency-free grouped horizontal bar chart as SVG (for BENCHMARKS.md).

export interface ChartGroup {
  readonly label: string;
  /** Unit of this group's values (default: the chart's). */
  readonly unit?: string;
  readonly bars: ReadonlyArray<{ readonly name: string; readonly value: number }>;
}

const COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1', '#b83280', '#718096'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Each group is scaled to its own maximum (units differ between groups). */
export function barChartSvg(title: string, unit: string, groups: readonly ChartGroup[]): string {
  const width = 760;
  const labelW = 170;
  const barH = 18;
  const gap = 6;
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length]!;
  let y = 40;
  const parts: string[] = [];
  for (const g of groups) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(g.label)}</text>`);
    y += 10;
    const max = Math.max(...g.bars.map((b) => b.value), 1e-9);
    const groupUnit = g.unit ?? unit;
    for (const b of g.bars) {
      const w = Math.max(1, ((width - labelW - 90) * b.value) / max);
      parts.push(
        `<text x="${labelW - 8}" y="${y + barH - 5}" text-anchor="end">${esc(b.name)}</text>`,
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color(b.name)}"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH - 5}">${b.value.toFixed(1)} ${esc(groupUnit)}</text>`,
      );
      y += barH + gap;
    }
    y += 18;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
