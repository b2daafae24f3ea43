// Uppy 5 as the company's web app configures it for hoist-server (README, "Your web app with
// Uppy"): Companion's endpoints with the signed-in user's bearer token in `headers`, and each
// file's size among its metadata so a size limit can be checked before anything is sent.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";
import { upload } from "../page/common.js";

window.hoistUppy = {
  version: 5,
  make({ endpoint, token, limit }) {
    const uppy = new Uppy({ autoProceed: false });
    uppy.use(AwsS3, {
      endpoint,
      headers: { authorization: `Bearer ${token}` },
      shouldUseMultipart: (file) => file.size > 5 * 1024 * 1024,
      allowedMetaFields: ["name", "type", "size", "relativePath"],
      ...(limit ? { limit } : {}),
    });
    uppy.on("file-added", (file) => uppy.setFileMeta(file.id, { size: file.size }));
    return uppy;
  },
  upload,
};
