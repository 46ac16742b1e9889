// Small DOM helpers. Text from the network only ever goes in through textContent (h's
// children and `text`), never innerHTML: customers' messages are untrusted.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Make parent's children match items, in order, reusing the element of each key, so that
 * focus, typed text and scroll positions inside an item survive a re-render. */
export function syncList(parent, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of [...parent.children]) existing.set(child.dataset.key, child);
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = existing.get(key);
    if (el) existing.delete(key);
    else {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    const expected = previous ? previous.nextElementSibling : parent.firstElementChild;
    if (el !== expected) parent.insertBefore(el, expected);
    previous = el;
  }
  for (const el of existing.values()) el.remove();
}

/** A keyed list drawn by syncList, with its render and a cheap tick that only updates the
 * items shown (countdowns, waiting times) without reordering them. */
export function keyedList({ parent, empty, items, byKey, keyOf, create, update }) {
  return {
    render() {
      const all = items();
      syncList(parent, all, keyOf, create, update);
      empty.hidden = all.length > 0;
    },
    tick() {
      for (const el of parent.children) {
        const item = byKey.get(el.dataset.key);
        if (item) update(el, item);
      }
    },
  };
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
