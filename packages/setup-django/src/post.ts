import * as core from '@actions/core';
import { saveVenv } from '@slipway/toolkit/venv-cache';
import { CACHE_STATE, type CacheState } from './main';

/** Saves the ready venv (only after a successful job: action.yml says post-if: success()). */
export async function post(): Promise<void> {
  const raw = core.getState(CACHE_STATE);
  if (!raw) return; // main did not get that far
  const state = JSON.parse(raw) as CacheState;
  if (!state.enabled) return;
  if (state.exactHit) {
    core.info(`Cache hit on ${state.key}: nothing to save.`);
    return;
  }
  const saved = await saveVenv(state.venv, state.key);
  core.info(saved ? `Saved the virtualenv as ${state.key}` : `The virtualenv was not saved (${state.key}).`);
}
