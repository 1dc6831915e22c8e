import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { html } from './util.js';

const COLORS = ['#1f4e8c', '#b3261e', '#1b7a3d', '#8a4b00', '#6a1b9a', '#00695c'];

// A time-series chart (uPlot). times: unix seconds; series: [{label, values}]. The figure's
// caption names what it shows and the latest values are given as text next to it, for readers
// that cannot see the canvas.
export function Chart({ title, times, series, unit = '' }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current;
    const width = () => Math.max(200, el.clientWidth);
    const opts = {
      width: width(),
      height: 180,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [{}, { values: (u, vals) => vals.map((v) => (v === null ? '' : `${+v.toFixed(2)}${unit}`)), size: 60 }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: false } }))],
    };
    plot.current = new uPlot(opts, [times, ...series.map((s) => s.values)], el);
    const ro = new ResizeObserver(() => plot.current && plot.current.setSize({ width: width(), height: 180 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    if (plot.current) plot.current.setData([times, ...series.map((s) => s.values)]);
  });

  const latest = series
    .map((s) => {
      const v = s.values.length ? s.values[s.values.length - 1] : null;
      return `${s.label}: ${v === null || v === undefined ? '—' : +v.toFixed(2) + unit}`;
    })
    .join(', ');
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div ref=${box} class="chart-box" aria-hidden="true"></div>
    <p class="chart-latest">Latest: ${latest}</p>
  </figure>`;
}
