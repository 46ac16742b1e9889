// What the tab keeps for itself in sessionStorage: the agent's token (never localStorage:
// it goes with the tab), the selected conversation and the half-written replies, so that a
// reload or a reconnect finds the agent where they were.

const PREFIX = "zhongtai.console.";

export class TabStorage {
  constructor(storage = window.sessionStorage) {
    this.storage = storage;
  }

  get(key) {
    try {
      return this.storage.getItem(PREFIX + key);
    } catch {
      return null;
    }
  }

  set(key, value) {
    try {
      if (value === null || value === undefined || value === "") this.storage.removeItem(PREFIX + key);
      else this.storage.setItem(PREFIX + key, value);
    } catch {
      // storage full or refused: the tab still works, it just forgets on reload
    }
  }

  /** Drafts of one agent, per conversation. */
  drafts(agentId) {
    return {
      get: (conversationId) => this.get(`draft.${agentId}.${conversationId}`) || "",
      set: (conversationId, text) => this.set(`draft.${agentId}.${conversationId}`, text),
    };
  }
}
