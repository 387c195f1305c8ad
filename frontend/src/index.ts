// Entry point: TensorBoard's plugin_entry.html imports this module inside the
// tab's iframe and calls render().
import { App } from "./app";
import { injectStyles } from "./styles";

let app: App | null = null;

export function render(): void {
  injectStyles(document);
  if (app) return;
  app = new App(document.body);
  void app.start();
  // Exposed for the benchmark and end-to-end tests (read-only inspection).
  (window as unknown as { __al: App }).__al = app;
}
