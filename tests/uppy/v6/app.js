// Uppy 6 as the company's web app configures it for hoist-server (README, "Your web app with
// Uppy"): `signRequest`, each S3 request signed by hoist-server's POST /s3/sign with the
// signed-in user's bearer token. (Uppy 6's `companionEndpoint` sends no credentials to another
// origin, so it suits only a page served from hoist-server's own origin.)
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";
import { upload } from "../page/common.js";
import { finishSignIn, signIn } from "../page/sign-in.js";

window.hoistUppy = {
  version: 6,
  make({ endpoint, token, limit }) {
    const uppy = new Uppy({ autoProceed: false });
    uppy.use(AwsS3, {
      async signRequest(request) {
        const response = await fetch(`${endpoint}/s3/sign`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(request),
        });
        const answer = await response.json();
        // hoist-server's refusal says why (a type, a size, a policy): show it.
        if (!response.ok) throw new Error(answer.message ?? response.statusText);
        return answer;
      },
      // hoist-server makes the key; the file's name is all it reads of Uppy's.
      generateObjectKey: (file) => file.name,
      shouldUseMultipart: (file) => file.size > 5 * 1024 * 1024,
      ...(limit ? { limit } : {}),
    });
    return uppy;
  },
  upload,
  signIn,
  finishSignIn,
};
